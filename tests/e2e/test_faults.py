"""Example DAGs against a platform that fails 30 % of its requests and cuts log streams."""

from __future__ import annotations

from typing import Any

from ..conftest import PlatformProcess
from .conftest import EXAMPLES


def test_examples_succeed_through_faults(dags_test: Any, faulty_platform: PlatformProcess) -> None:
    deeds = dags_test("neuro_small_deeds", EXAMPLES, faulty_platform, ubuntu_tag="22.04")
    assert deeds.states == {"small-deeds": "success", "wait_close": "success"}, deeds.output
    [job] = faulty_platform.jobs(f"airflow-run:{deeds.run_id}", "airflow-task:small-deeds")
    assert deeds.xcom("small-deeds")["id"] == job.id

    branch = dags_test("neuro_check_model", EXAMPLES, faulty_platform, project_home="models/f")
    assert branch.states == {
        "check_model_exists": "success",
        "process_without_model": "success",
        "process_with_model": "skipped",
    }, branch.output
    assert "no model yet" in "\n".join(branch.task_log_lines("process_without_model"))

    pipeline = dags_test("neuro_train_pipeline", EXAMPLES, faulty_platform)
    assert set(pipeline.states.values()) == {"success"}, pipeline.output
    epochs = [line for line in pipeline.task_log_lines("train") if "epoch " in line]
    assert len(epochs) == 3, epochs  # complete, and nothing twice
    assert [e.split("epoch ")[1].split(" ")[0] for e in epochs] == ["1/3", "2/3", "3/3"]
    for task_id in ("prepare_data", "train", "evaluate"):
        jobs = faulty_platform.jobs(f"airflow-run:{pipeline.run_id}", f"airflow-task:{task_id}")
        assert len(jobs) == 1, (task_id, jobs)  # one job per task, faults or not
    assert pipeline.xcom("report").startswith("train job-")
