"""What the latest run of a DAG did, read from Airflow's metadata DB, as JSON on stdout.

``airflow-neuro demo`` runs this in a process of its own with the demo's Airflow
environment (``AIRFLOW_HOME`` and its DB), since Airflow reads its configuration once, at
import: ``python -m airflow_neuro.demo_facts DAG_ID``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def facts(dag_id: str) -> dict[str, Any]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1)
        ).first()
        if run is None:
            return {"run_id": None, "tasks": []}
        instances = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
            .order_by(TaskInstance.start_date, TaskInstance.map_index)
        ).all()
        tasks = []
        for ti in instances:
            value = session.scalars(
                select(XComModel.value).where(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id == run.run_id,
                    XComModel.task_id == ti.task_id,
                    XComModel.map_index == ti.map_index,
                    XComModel.key == "return_value",
                )
            ).first()
            seconds = (
                (ti.end_date - ti.start_date).total_seconds()
                if ti.start_date and ti.end_date
                else None
            )
            tasks.append({
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": str(ti.state) if ti.state else None,
                "seconds": seconds,
                "xcom": _loaded(value),
            })  # fmt: skip
        return {"run_id": run.run_id, "state": str(run.state), "tasks": tasks}


def _loaded(value: Any) -> Any:
    # XCom values are stored as JSON text in Airflow 3; older rows may hold bytes.
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def main() -> None:
    json.dump(facts(sys.argv[1]), sys.stdout, default=str)


if __name__ == "__main__":
    main()
