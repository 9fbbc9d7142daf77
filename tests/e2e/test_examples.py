"""Every example DAG, end to end in real Airflow against the local platform."""

from __future__ import annotations

from typing import Any

import apolo_sdk

from ..conftest import PlatformProcess
from .conftest import DagRunResult


def identity(result: DagRunResult, task_id: str) -> tuple[str, ...]:
    return (
        f"airflow-dag:{result.dag_id}",
        f"airflow-task:{task_id}",
        f"airflow-run:{result.run_id}",
    )


def only_job(
    platform: PlatformProcess, result: DagRunResult, task_id: str
) -> apolo_sdk.JobDescription:
    jobs = platform.jobs(*identity(result, task_id))
    assert len(jobs) == 1, jobs
    return jobs[0]


def test_small_deeds(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("neuro_small_deeds", ubuntu_tag="22.04")
    assert result.states == {"small-deeds": "success", "wait_close": "success"}, result.output
    job = only_job(platform_process, result, "small-deeds")
    assert str(job.container.image) == "ubuntu:22.04"  # templated from the variable
    assert job.preset_name == "cpu-small"  # templated: use_large_cpu is not set
    assert job.container.command == "echo 'Big things start from small deeds'"
    assert job.status == apolo_sdk.JobStatus.SUCCEEDED
    # Detached: the task returns once the job has started, so XCom has the job as it was
    # then, running or (an echo is quick) already done.
    assert result.xcom("small-deeds") in (
        {"id": job.id, "exit_code": 0, "status": "succeeded", "http_url": None},
        {"id": job.id, "exit_code": None, "status": "running", "http_url": None},
    )
    assert result.xcom("small-deeds", "assigned_job")["id"] == job.id
    assert any("Success criteria met" in line for line in result.task_log_lines("wait_close"))
    assert platform_process.token not in result.output


def test_small_deeds_large_cpu(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("neuro_small_deeds", ubuntu_tag="24.04", use_large_cpu="yes")
    assert result.states["small-deeds"] == "success"
    job = only_job(platform_process, result, "small-deeds")
    assert (str(job.container.image), job.preset_name) == ("ubuntu:24.04", "cpu-large")


def test_check_model_branches(dags_test: Any, platform_process: PlatformProcess) -> None:
    without = dags_test("neuro_check_model", project_home="models/e2e")
    assert without.states == {
        "check_model_exists": "success",
        "process_without_model": "success",
        "process_with_model": "skipped",
    }, without.output
    assert "no model yet" in "\n".join(without.task_log_lines("process_without_model"))

    model = platform_process.data_dir / "storage/local/default/models/e2e/model.pth"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_text("resnet")
    with_model = dags_test("neuro_check_model", project_home="models/e2e")
    assert with_model.states["process_with_model"] == "success", with_model.output
    assert with_model.states["process_without_model"] == "skipped"
    assert "using resnet" in "\n".join(with_model.task_log_lines("process_with_model"))
    job = only_job(platform_process, with_model, "process_with_model")
    volume = job.container.volumes[0]
    assert (str(volume.storage_uri), volume.container_path, volume.read_only) == (
        "storage://local/local/default/models/e2e",
        "/models",
        True,
    )


def test_train_pipeline(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("neuro_train_pipeline")
    assert set(result.states.values()) == {"success"}, result.output
    train_log = result.task_log_lines("train")
    epochs = [line for line in train_log if "epoch " in line]
    assert len(epochs) == 3
    assert "epoch 1/3 \N{EN DASH} loss 0.9" in epochs[0]
    assert any("model saved" in line for line in train_log)
    assert any("prepared 100 rows" in line for line in result.task_log_lines("prepare_data"))

    train = only_job(platform_process, result, "train")
    assert train.container.env == {"EPOCHS": "3", "RUN_ID": result.run_id}
    assert train.preset_name == "cpu-medium"
    assert train.life_span == 3600
    assert train.description is not None
    assert train.description.startswith("train on ")
    assert "example:pipeline" in train.tags
    assert {
        v.read_only for v in only_job(platform_process, result, "evaluate").container.volumes
    } == {True}

    report = result.xcom("report")
    assert report.startswith(f"train {train.id}: succeeded (exit 0); evaluate ")
