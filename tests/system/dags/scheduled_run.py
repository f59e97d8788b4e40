"""Run a DAG the way the scheduler runs it: a *scheduled* DagRun of the DAG's own timetable.

``airflow dags test`` only makes manual runs. This script asks the DAG's timetable for its next
scheduled run (as the scheduler does, from the DAG's ``start_date`` and ``catchup``), creates that
DagRun (run type ``scheduled``, the timetable's logical date, data interval and ``run_after``),
and runs its tasks with ``dag.test()``'s loop. It prints the run as one JSON line and exits 1
unless the run succeeded.

Usage (in an AIRFLOW_HOME with a migrated database): ``python scheduled_run.py DAG_ID``.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from unittest import mock

import airflow

AIRFLOW_3 = not airflow.__version__.startswith("2.")


def _dag(dag_id: str) -> Any:
    from airflow.configuration import conf

    if AIRFLOW_3:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    else:
        from airflow.models.dagbag import DagBag

        bag = DagBag(dag_folder=conf.get("core", "dags_folder"), include_examples=False)
    return bag.get_dag(dag_id)


def _next_scheduled_run(dag: Any) -> tuple[Any, Any, Any]:
    """(logical date, data interval, run_after) of the DAG's next scheduled run, by its timetable."""
    if AIRFLOW_3:
        from airflow.serialization.serialized_objects import DagSerialization

        scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        info = scheduler_dag.next_dagrun_info(last_automated_run_info=None)
    else:
        info = dag.next_dagrun_info(last_automated_dagrun=None)
    return info.logical_date, info.data_interval, info.run_after


def main(dag_id: str) -> int:
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    dag = _dag(dag_id)
    logical_date, interval, run_after = _next_scheduled_run(dag)

    def scheduled_dagrun(*, dag: Any, session: Any, conf: Any = None, **_: Any) -> Any:
        """Stands in for dag.test()'s manual DagRun: the run the scheduler would create."""
        options: dict[str, Any] = dict(
            state=DagRunState.RUNNING,
            run_type=DagRunType.SCHEDULED,
            data_interval=(interval.start, interval.end),
            conf=conf,
            session=session,
            start_date=run_after,
        )
        if AIRFLOW_3:
            from airflow.utils.types import DagRunTriggeredByType

            run_id = DagRun.generate_run_id(
                run_type=DagRunType.SCHEDULED, logical_date=logical_date, run_after=run_after
            )
            options.update(logical_date=logical_date, run_after=run_after, triggered_by=DagRunTriggeredByType.TIMETABLE)
        else:
            run_id = DagRun.generate_run_id(DagRunType.SCHEDULED, logical_date)
            options.update(execution_date=logical_date)
        earlier = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id).one_or_none()
        if earlier is not None:  # this script ran before in the same database
            session.delete(earlier)
            session.commit()
        return dag.create_dagrun(run_id=run_id, **options)

    if AIRFLOW_3:
        with mock.patch("airflow.models.dagrun.get_or_create_dagrun", scheduled_dagrun):
            dag.test(logical_date=logical_date, run_after=run_after)
    else:
        with mock.patch("airflow.models.dag._get_or_create_dagrun", scheduled_dagrun):
            dag.test(execution_date=logical_date)

    from airflow.utils.session import create_session

    with create_session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == dag_id, DagRun.run_type == DagRunType.SCHEDULED)
            .order_by(DagRun.id.desc())
            .first()
        )
        report = {
            "run_id": run.run_id,
            "run_type": str(run.run_type.value if hasattr(run.run_type, "value") else run.run_type),
            "state": str(getattr(run.state, "value", run.state)),
            "logical_date": (run.logical_date if AIRFLOW_3 else run.execution_date).isoformat(),
            "data_interval_start": run.data_interval_start.isoformat(),
            "data_interval_end": run.data_interval_end.isoformat(),
            "run_after": run_after.isoformat(),
            "timetable": type(dag.timetable).__name__,
        }
    print("SCHEDULED_RUN " + json.dumps(report))
    return 0 if report["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
