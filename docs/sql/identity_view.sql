-- One row per device: the user of its earliest mapping event across every exported day.
-- mixpanel_identity_mappings: the identity parts the operators write (every window, all days);
-- the view has the columns and the name of Data Pipelines' identity mappings view, so Mixpanel's
-- published queries run on it unchanged. Portable SQL: DuckDB, BigQuery, Snowflake, Athena.
CREATE OR REPLACE VIEW mp_identity_mappings_data_view AS
SELECT
  distinct_id,
  resolved_distinct_id
FROM (
  SELECT
    distinct_id,
    resolved_distinct_id,
    ROW_NUMBER() OVER (PARTITION BY distinct_id ORDER BY event_time, insert_id) AS mapping_rank
  FROM mixpanel_identity_mappings
) AS mappings
WHERE mapping_rank = 1;
