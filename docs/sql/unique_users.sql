-- Unique users as Mixpanel's reports count them: each event's distinct_id, or the user its
-- device was mapped to (Mixpanel's COALESCE(resolved_distinct_id, distinct_id)).
SELECT
  COUNT(DISTINCT COALESCE(mappings.resolved_distinct_id, events.distinct_id)) AS unique_users
FROM mixpanel_events AS events
LEFT JOIN mp_identity_mappings_data_view AS mappings
  ON events.distinct_id = mappings.distinct_id;
