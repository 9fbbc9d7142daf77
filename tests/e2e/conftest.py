"""Real Airflow: `airflow dags test` in a subprocess, the metadata DB read back here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..conftest import REPO, PlatformProcess

EXAMPLES = REPO / "examples" / "dags"
SCENARIOS = Path(__file__).parent / "dags"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str
    output: str
    states: dict[str, str | None]

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            value = session.scalar(
                select(XComModel.value).where(
                    XComModel.dag_id == self.dag_id,
                    XComModel.run_id == self.run_id,
                    XComModel.task_id == task_id,
                    XComModel.key == key,
                )
            )
        # Stored as serialized JSON text, or already decoded by the JSON column type.
        try:
            return json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return value

    def task_log_lines(self, task_id: str) -> list[str]:
        """Log messages the operator wrote, from the `airflow dags test` output."""
        marker = f"[DAG TEST] starting task_id={task_id} "
        lines, inside = [], False
        for line in self.output.splitlines():
            if marker in line:
                inside = True
            elif inside and "[DAG TEST] end task" in line:
                break
            elif inside:
                lines.append(line)
        return lines


@pytest.fixture(scope="session")
def airflow_db() -> None:
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, timeout=300)


def airflow_env(folder: Path, platform: PlatformProcess | None = None) -> dict[str, str]:
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    if platform is not None:
        env["AIRFLOW_CONN_NEURO_DEFAULT"] = platform.connection_json()
    return env


@pytest.fixture(scope="session")
def dags_test(airflow_db: None, platform_process: PlatformProcess) -> Any:
    def run(
        dag_id: str,
        folder: Path = EXAMPLES,
        platform: PlatformProcess | None = None,
        conf: dict[str, Any] | None = None,
        **variables: str,
    ) -> DagRunResult:
        env = airflow_env(folder, platform)
        env.update({f"AIRFLOW_VAR_{k.upper()}": v for k, v in variables.items()})
        # One stream, unbuffered: task logs and Airflow's [DAG TEST] markers stay in order
        # (Airflow 3.1 writes them to different streams).
        env["PYTHONUNBUFFERED"] = "1"
        with_conf = ["--conf", json.dumps(conf)] if conf else []
        done = subprocess.run(
            [AIRFLOW, "dags", "test", dag_id, *with_conf],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        )  # fmt: skip
        output = done.stdout
        run_id, states = latest_run(dag_id)
        return DagRunResult(dag_id, run_id, output, states)

    return run


def latest_run(dag_id: str) -> tuple[str, dict[str, str | None]]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run_id = session.scalar(
            select(DagRun.run_id).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1)
        )
        assert run_id is not None, f"no run of {dag_id}"
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return run_id, {task_id: (str(state) if state else None) for task_id, state in rows}
