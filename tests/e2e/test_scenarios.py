"""Failures, bad input, timeouts and links, end to end in real Airflow."""

from __future__ import annotations

import time
from typing import Any

import apolo_sdk

from ..conftest import PlatformProcess
from .conftest import SCENARIOS


def jobs_of(platform: PlatformProcess, dag_id: str, run_id: str, task_id: str) -> list[Any]:
    return platform.jobs(
        f"airflow-dag:{dag_id}", f"airflow-run:{run_id}", f"airflow-task:{task_id}"
    )


def test_exit_codes_and_job_failures(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("scenario_exit_codes", SCENARIOS)
    assert result.states == {
        "fails_on_errno": "failed",
        "records_errno": "success",
        "never_ran": "failed",
        "life_span_ends": "failed",
    }, result.output
    out = result.output
    assert "about to fail" in "\n".join(result.task_log_lines("fails_on_errno"))
    assert "failed: reason=Error, description=-, exit code=3" in out
    assert result.xcom("records_errno")["exit_code"] == 3
    assert result.xcom("records_errno")["status"] == "failed"
    # A job that never ran fails the task even with raise_on_errno=False.
    assert "reason=ContainerCannotRun" in out
    assert "no-such-program" in out
    assert "cancelled: reason=LifeSpanEnded" in out


def test_bad_input_fails_before_any_job(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("scenario_bad_input", SCENARIOS)
    assert set(result.states.values()) == {"failed"}, result.output
    expected = {
        "bad_volume": "job_volumes[0]: 'storage:data' is not 'storage:PATH:/MOUNT/PATH[:ro|rw]'",
        "bad_volume_mode": "job_volumes[0]: 'storage:data:/data:rx': the mode must be 'ro' or 'rw'",
        "bad_port": "job_http_port: must be a port number, got 'eighty'",
        "bad_env": "job_environ['EPOCHS']: values must be strings, got int",
        "bad_tag": "job_tags: 'has space': tags cannot contain white space",
        "bad_name": "job_name: 'Not_A_Name' is not allowed",
        "unknown_preset": "job_resources_preset: unknown preset 'gpu-galaxy'; the cluster has"
        " cpu-large, cpu-medium, cpu-small",
        "tags_as_string": "job_tags: must be a list of strings",
        "volumes_as_string": "job_volumes: must be a list of 'storage:PATH:/MOUNT[:ro|rw]'"
        " strings or Volumes, got str (put it in a list: ['storage:data:/data'])",
        "volume_above_project": "job_volumes[0]: 'storage:../../..:/mnt': '..' is not allowed",
        "volume_empty_path": "job_volumes[0]: 'storage::/x': the storage path is empty",
        "env_as_pairs": "job_environ: must be a mapping of names to strings (dict(pairs) makes"
        " one from pairs), got list",
    }
    for task_id, message in expected.items():
        assert message in "\n".join(result.task_log_lines(task_id)), task_id
        assert jobs_of(platform_process, result.dag_id, result.run_id, task_id) == []
    assert set(result.states) == set(expected)
    assert platform_process.jobs(f"airflow-run:{result.run_id}") == []


def test_attached_log_env_tags_and_links(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("scenario_attached", SCENARIOS)
    assert result.states == {"attached": "success", "served": "success"}, result.output
    log = result.task_log_lines("attached")
    assert any("split Ж char" in line for line in log)
    assert any("hello from scenario_attached" in line for line in log)

    [job] = jobs_of(platform_process, result.dag_id, result.run_id, "attached")
    assert job.container.env == {"GREETING": "hello from scenario_attached"}
    assert job.description == "attached in scenario_attached"
    assert set(job.tags) == {
        "purpose:e2e",
        f"airflow-dag:{result.dag_id}",
        "airflow-task:attached",
        f"airflow-run:{result.run_id}",
        "airflow-map-index:-1",
        "airflow-try:1",
    }
    assert result.xcom("attached", "_link_NeuroJobLink").endswith(f"/api/v1/jobs/{job.id}")

    served = result.xcom("served")
    assert served["status"] == "running"
    assert served["http_url"].endswith(f"/jobs-http/{served['id']}/")
    assert result.xcom("served", "_link_NeuroJobHttpLink") == served["http_url"]


def test_execution_timeout_cancels_the_job(
    dags_test: Any, platform_process: PlatformProcess
) -> None:
    started = time.monotonic()
    result = dags_test("scenario_timeout", SCENARIOS)
    assert result.states == {"too_slow": "failed"}, result.output
    [job] = jobs_of(platform_process, result.dag_id, result.run_id, "too_slow")
    assert job.status == apolo_sdk.JobStatus.CANCELLED
    assert job.history.reason == "UserRequested"
    assert time.monotonic() - started < 40  # the job's own 60 s were not waited out


def test_sensor_fails_fast_on_a_status_it_can_never_see(dags_test: Any) -> None:
    result = dags_test("scenario_sensor_mismatch", SCENARIOS)
    assert result.states == {"failing": "success", "wait_success": "failed"}, result.output
    assert "it will never be succeeded" in "\n".join(result.task_log_lines("wait_success"))


def test_sensor_in_reschedule_mode(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("scenario_reschedule", SCENARIOS)
    assert result.states == {"slow": "success", "wait_rescheduled": "success"}, result.output
    assert result.xcom("slow")["status"] == "running"  # detached: it returned once started
    [job] = jobs_of(platform_process, result.dag_id, result.run_id, "slow")
    assert job.status == apolo_sdk.JobStatus.SUCCEEDED
    pokes = [line for line in result.output.splitlines() if f"Job {job.id} is running" in line]
    assert len(pokes) >= 2  # it really waited, poke after poke


def test_deferred_run_and_sensor_complete_through_the_trigger(
    dags_test: Any, platform_process: PlatformProcess
) -> None:
    result = dags_test("scenario_deferred", SCENARIOS)
    assert result.states == {
        "deferred_run": "success",
        "deferred_failure": "failed",
        "deferred_sensor": "success",
    }, result.output
    out = result.output
    assert "NeuroJobTrigger" in out  # it really deferred
    # The job's log reached the task log through the trigger, whole characters and all.
    assert "deferred one" in out
    assert "deferred Ж two" in out
    [job] = jobs_of(platform_process, result.dag_id, result.run_id, "deferred_run")
    assert result.xcom("deferred_run") == {
        "id": job.id,
        "exit_code": 0,
        "status": "succeeded",
        "http_url": None,
    }
    assert "failed: reason=Error, description=-, exit code=5" in out


def test_sensor_timeout_cancels_the_job(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("scenario_sensor_timeout", SCENARIOS)
    assert result.states == {"slow_job": "success", "impatient": "failed"}, result.output
    [job] = jobs_of(platform_process, result.dag_id, result.run_id, "slow_job")
    assert job.status == apolo_sdk.JobStatus.CANCELLED
    assert "Timed out: cancelled job" in "\n".join(result.task_log_lines("impatient"))
