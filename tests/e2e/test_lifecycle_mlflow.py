"""The MLflow variant of the model lifecycle, in real Airflow (opt-in: make venv-mlflow)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import apolo_sdk
import pytest

from ..conftest import JOBS_VENV, REPO, PlatformProcess, free_port, serving

DAG_ID = "neuro_model_lifecycle_mlflow"
GRID = {"rf-10-2": 10, "rf-10-full": 10, "rf-50-2": 50, "rf-50-full": 50}  # n_estimators
MLFLOW_VENV = REPO / ".venv-mlflow"
# As the Makefile maps it: MLflow's image, tagged with the version the runtime pins.
PINNED = re.search(r"^mlflow==(\S+)$", (REPO / "constraints-mlflow.txt").read_text(), re.M)
MLFLOW_IMAGE = f"ghcr.io/mlflow/mlflow:v{PINNED[1] if PINNED else '?'}"

pytestmark = pytest.mark.mlflow
needs_runtimes = pytest.mark.skipif(
    not (MLFLOW_VENV.is_dir() and JOBS_VENV.is_dir()),
    reason="needs the MLflow jobs' environment and the jobs' one: make venv-mlflow venv-jobs",
)


@pytest.fixture(scope="module")
def mlflow_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    """A platform of its own, whose runtimes map the MLflow image too."""
    runtimes = {"python:3.11": JOBS_VENV, MLFLOW_IMAGE: MLFLOW_VENV}
    with serving(tmp_path_factory.mktemp("platform-mlflow"), runtimes=runtimes) as platform:
        yield platform


def jobs_of(platform: PlatformProcess, run_id: str, task_id: str) -> list[apolo_sdk.JobDescription]:
    return platform.jobs(
        f"airflow-dag:{DAG_ID}", f"airflow-run:{run_id}", f"airflow-task:{task_id}"
    )


def tracked_runs(platform: PlatformProcess, sweep: str) -> dict[str, dict[str, Any]]:
    """The sweep's runs as the tracking server stored them (it is stopped by now), by
    trial: run id and cross-validation accuracy."""
    db = platform.data_dir / "storage/local/default/lifecycle-mlflow/server/mlflow.db"
    with closing(sqlite3.connect(db)) as connection:
        rows = connection.execute(
            """
            SELECT trial.value, runs.run_uuid, metric.value FROM runs
            JOIN tags AS sweep ON sweep.run_uuid = runs.run_uuid AND sweep.key = 'airflow_run'
            JOIN tags AS trial ON trial.run_uuid = runs.run_uuid AND trial.key = 'trial'
            LEFT JOIN latest_metrics AS metric
                ON metric.run_uuid = runs.run_uuid AND metric.key = 'cv_accuracy'
            WHERE sweep.value = ? AND runs.status = 'FINISHED'
            """,
            (sweep,),
        ).fetchall()
    assert len(rows) == len({trial for trial, _, _ in rows}), rows  # one run per trial
    return {trial: {"run_id": run, "cv_accuracy": cv} for trial, run, cv in rows}


def test_the_dag_uses_the_pinned_mlflow_image() -> None:
    # The DAG names the image, the Makefile and the fixture derive it from the pin.
    dag = (REPO / "examples/dags/neuro_model_lifecycle_mlflow.py").read_text()
    assert f'MLFLOW_IMAGE = "{MLFLOW_IMAGE}"' in dag


@needs_runtimes
@pytest.mark.timeout(240)  # about 45 s here; MLflow starts slowly on a busy machine
def test_sweep_tracked_in_mlflow_best_run_served(
    dags_test: Any, mlflow_platform: PlatformProcess
) -> None:
    run = dags_test(
        DAG_ID, platform=mlflow_platform, conf={"port": free_port(), "mlflow_port": free_port()}
    )
    assert set(run.states.values()) == {"success"}, run.output

    # The trials ran in MLflow's image, reached the server by its internal name, and
    # logged one run each, with the metric.
    tracking = run.xcom("tracking_server")
    assert tracking["internal_url"].startswith("http://mlflow-tracking--")
    trials = jobs_of(mlflow_platform, run.run_id, "train")
    assert len(trials) == len(GRID)
    assert {str(job.container.image) for job in trials} == {MLFLOW_IMAGE}
    assert f"to {tracking['internal_url']}" in "\n".join(run.task_log_lines("train"))
    stored = tracked_runs(mlflow_platform, run.run_id)
    assert set(stored) == set(GRID)
    assert all(isinstance(r["cv_accuracy"], float) for r in stored.values()), stored

    # The run chosen through MLflow's API is the best one (the smaller forest on a tie).
    best = max(stored, key=lambda t: (stored[t]["cv_accuracy"], -GRID[t]))
    report = run.xcom("report")
    assert report["best"] == best
    assert report["mlflow"]["best_run"] == stored[best]["run_id"]
    assert report["mlflow"]["runs"] == {t: r["run_id"] for t, r in stored.items()}
    assert {t["trial"] for t in report["trials"]} == set(GRID)  # what `demo` prints

    # That model is the one served, and it answers with wine classes, one per row.
    assert run.xcom("model_info")["trial"] == best
    answer = run.xcom("predict")
    assert len(answer["labels"]) == 8
    assert set(answer["labels"]) <= {0, 1, 2}

    # Both services were stopped by their teardown tasks.
    for task_id in ("tracking_server", "deploy"):
        [service] = jobs_of(mlflow_platform, run.run_id, task_id)
        assert service.status == apolo_sdk.JobStatus.CANCELLED, task_id
