"""Serving end to end in real Airflow: deploy, ask, stop, and every way a service fails."""

from __future__ import annotations

import shutil
from typing import Any

import apolo_sdk
import pytest

from ..conftest import PlatformProcess, free_port
from .conftest import EXAMPLES, SCENARIOS, DagRunResult
from .test_examples import only_job

CODE = "serving-scenarios"  # the storage folder dags/serving_scenarios.py mounts


@pytest.fixture(scope="module", autouse=True)
def server_in_storage(platform_process: PlatformProcess) -> None:
    """The scenarios' jobs run the example's server from storage, as a job would."""
    directory = platform_process.data_dir / "storage" / "local" / "default" / CODE
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "model_server.py", directory)


def base(platform: PlatformProcess) -> str:
    return platform.api_url.removesuffix("/api/v1")


def log_of(result: DagRunResult, task_id: str) -> str:
    return "\n".join(result.task_log_lines(task_id))


def test_the_serving_example(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("neuro_serve_model", conf={"port": free_port()})
    assert set(result.states.values()) == {"success"}, result.output
    job = only_job(platform_process, result, "deploy_model")
    service = result.xcom("deploy_model")
    assert service["id"] == job.id
    assert service["name"] == "demo-model"
    assert service["http_url"] == f"{base(platform_process)}/jobs-http/demo-model--local/"
    assert service["internal_url"].startswith("http://demo-model--local.default:")
    assert service["ready_after_s"] >= 1.0  # the server warms up for a second
    prediction = result.xcom("predict")["y"]
    assert [round(y) for y in prediction] == [1, 3, 5]
    assert result.xcom("model_info")["kind"] == "linear"
    assert round(result.xcom("predict_from_code")[0]) == 21
    # The teardown stopped the service.
    assert result.xcom("stop_model") == [job.id]
    [stopped] = [j for j in platform_process.jobs() if j.id == job.id]
    assert stopped.status == apolo_sdk.JobStatus.CANCELLED
    assert platform_process.token not in result.output


def test_a_service_that_fails_in_each_way(
    dags_test: Any, platform_process: PlatformProcess
) -> None:
    silent = free_port()  # nothing listens there
    result = dags_test(
        "serving_failures", SCENARIOS, conf={"port": free_port(), "silent_port": silent}
    )
    assert result.states == {
        "deploy": "success",
        "bad_predict": "failed",
        "no_token": "failed",
        "stop": "success",
        "exits": "failed",
        "never_listens": "failed",
    }, result.output

    # A failed prediction says what the server answered; the teardown still stopped it.
    assert 'answered 400 Bad Request: {"error": "send' in log_of(result, "bad_predict")
    assert "answered 401 Unauthorized" in log_of(result, "no_token")
    served = only_job(platform_process, result, "deploy")
    assert result.xcom("stop") == [served.id]
    [stopped] = [j for j in platform_process.jobs() if j.id == served.id]
    assert stopped.status == apolo_sdk.JobStatus.CANCELLED

    exits = log_of(result, "exits")
    assert "the service ended before it answered" in exits
    assert "failed: reason=Error, description=-, exit code=3" in exits
    assert "  loading weights\n" in result.output
    assert "  weights.pt: no such file" in result.output

    never_log = log_of(result, "never_listens")
    assert "did not answer / with 200 in time" in never_log
    assert f"listens on 0.0.0.0:{silent}, not 127.0.0.1" in never_log
    never = only_job(platform_process, result, "never_listens")
    assert never.status == apolo_sdk.JobStatus.CANCELLED  # this task started it


def test_a_redeploy_reuses_the_same_spec_and_replaces_a_changed_one(
    dags_test: Any, platform_process: PlatformProcess
) -> None:
    port = free_port()
    first = dags_test("serving_redeploy", SCENARIOS, conf={"port": port, "version": "1"})
    again = dags_test("serving_redeploy", SCENARIOS, conf={"port": port, "version": "1"})
    changed = dags_test("serving_redeploy", SCENARIOS, conf={"port": port, "version": "2"})
    try:
        for result in (first, again, changed):
            assert result.states == {"deploy": "success"}, result.output
        job_id = first.xcom("deploy")["id"]
        assert again.xcom("deploy")["id"] == job_id
        assert f"Reusing live job {job_id}: it runs the same job spec" in log_of(again, "deploy")
        replaced = changed.xcom("deploy")["id"]
        assert replaced != job_id
        assert f"Replacing live job {job_id} (its job spec changed)" in log_of(changed, "deploy")
        named = [j for j in platform_process.jobs() if j.name == "redeploy-model"]
        assert {j.id: j.status.value for j in named} == {job_id: "cancelled", replaced: "running"}
        # The named URL stays the same across the redeploy.
        assert first.xcom("deploy")["http_url"] == changed.xcom("deploy")["http_url"]
    finally:
        for job in platform_process.jobs():
            if job.name == "redeploy-model" and job.status == apolo_sdk.JobStatus.RUNNING:
                platform_process.cancel(job.id)
