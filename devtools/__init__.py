"""Repository tooling, not shipped in the wheel: the S3/GCS emulators and the offline sandbox that
the tests, ``make demo`` and ``make bench`` share. The public test API (the Mixpanel test server
and its pytest fixtures) stays in :mod:`airflow_provider_mixpanel.testing`.

Importable from the repository root: pytest puts it on ``sys.path`` (``tests`` is a package), and
``scripts/demo.py`` and ``benchmarks/run.py`` add it themselves.
"""
