"""The model lifecycle example (data, sweep, best model served and asked), in real Airflow."""

from __future__ import annotations

import json
from typing import Any

import apolo_sdk
import pytest

from ..conftest import JOBS_VENV, PlatformProcess, free_port

DAG_ID = "neuro_model_lifecycle"
GRID_SIZE = 4

pytestmark = pytest.mark.skipif(
    not JOBS_VENV.is_dir(), reason="needs the jobs' environment: make venv-jobs"
)


def jobs_of(platform: PlatformProcess, run_id: str, task_id: str) -> list[apolo_sdk.JobDescription]:
    return platform.jobs(
        f"airflow-dag:{DAG_ID}", f"airflow-run:{run_id}", f"airflow-task:{task_id}"
    )


def test_sweep_best_model_served_and_cached(
    dags_test: Any, platform_process: PlatformProcess
) -> None:
    first = dags_test(DAG_ID, conf={"port": free_port()})
    assert set(first.states.values()) == {"success"}, first.output
    assert len(jobs_of(platform_process, first.run_id, "train")) == GRID_SIZE

    # The chosen trial really has the best cross-validation accuracy on storage.
    trials = platform_process.data_dir / "storage/local/default/lifecycle/trials"
    stored = {d.name: json.loads((d / "metrics.json").read_text()) for d in trials.iterdir()}
    assert len(stored) == GRID_SIZE
    report = first.xcom("report")
    best = max(m["cv_accuracy"] for m in stored.values())
    assert stored[report["best"]]["cv_accuracy"] == best
    training_log = "\n".join(first.task_log_lines("train"))
    assert "fold 5/5: accuracy" in training_log  # real training output in the task log

    # The served model answered with labels of the wine classes, one per row asked.
    answer = first.xcom("predict")
    assert len(answer["labels"]) == 8
    assert set(answer["labels"]) <= {0, 1, 2}
    assert first.xcom("model_info")["trial"] == report["best"]
    [service] = jobs_of(platform_process, first.run_id, "deploy")
    assert service.status == apolo_sdk.JobStatus.CANCELLED  # stopped by the teardown

    second = dags_test(DAG_ID, conf={"port": free_port()})
    assert set(second.states.values()) == {"success"}, second.output
    assert jobs_of(platform_process, second.run_id, "train") == []  # no trial trained again
    assert jobs_of(platform_process, second.run_id, "prepare") == []


def test_the_service_stops_even_when_predict_fails(
    dags_test: Any, platform_process: PlatformProcess
) -> None:
    # No rows to ask about: the model answers 400 and the predict task fails.
    run = dags_test(DAG_ID, conf={"port": free_port(), "rows": 0})
    assert run.states["predict"] == "failed", run.output
    assert run.states["undeploy"] == "success"
    [service] = jobs_of(platform_process, run.run_id, "deploy")
    assert service.status == apolo_sdk.JobStatus.CANCELLED
