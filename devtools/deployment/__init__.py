"""The deployment test (``make test-deployment``): the provider's wheel in a production-shaped
Airflow (Postgres, Redis, Celery workers on Airflow 3; the LocalExecutor on Airflow 2.11), driven
only through the REST API, against the Mixpanel test server and S3/GCS emulators. See README.md."""
