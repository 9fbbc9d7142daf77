"""The serving operators: arguments checked at parse time, the spec fingerprint, resuming."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import apolo_sdk
import pytest

from airflow_neuro.client import JobSummary, TaskIdentity
from airflow_neuro.client.service import ServiceInfo
from airflow_neuro.exceptions import JobArgumentError, NeuroJobError, ServiceNotReady
from airflow_neuro.job_request import JobRequest
from airflow_neuro.operators.serving import (
    NeuroDeployOperator,
    NeuroModelInfoOperator,
    NeuroModelPredictOperator,
    NeuroModelRequestOperator,
    NeuroUndeployOperator,
)
from airflow_neuro.triggers.events import ServiceEvent

from ..jobs import job


def deploy(**kwargs: Any) -> NeuroDeployOperator:
    arguments: dict[str, Any] = {
        "task_id": "deploy",
        "job_command": "python3 serve.py",
        "job_image": "python:3.11",
        "job_name": "model",
        "job_http_port": 8080,
        **kwargs,
    }
    return NeuroDeployOperator(**arguments)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job_name": None}, "job_name: a service needs a name"),
        ({"job_name": ""}, "job_name: a service needs a name"),
        ({"job_http_port": None}, "job_http_port: a service needs the port"),
        ({"if_exists": "keep"}, "if_exists: must be one of ('reuse', 'replace', 'fail')"),
        ({"health_statuses": [200, "ok"]}, "health_statuses: must be HTTP status codes"),
        ({"health_statuses": []}, "health_statuses: name at least one status"),
        ({"ready_timeout": -1}, "ready_timeout: must be more than 0 seconds, got -1"),
        ({"ready_timeout": float("inf")}, "ready_timeout: must be a finite number of seconds"),
        ({"job_detach": False}, "job_detach: a service runs until it is stopped"),
        ({"reuse_finished_job": True}, "reuse_finished_job: a service runs until"),
    ],
)
def test_deploy_arguments_are_checked_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(JobArgumentError) as raised:
        deploy(**kwargs)
    assert str(raised.value).startswith(message)


def test_a_service_lives_a_day_unless_told_and_waits_only_until_it_answers() -> None:
    operator = deploy()
    assert operator.job_lifespan == 24 * 3600
    assert operator.job_detach is True
    assert "health_path" in operator.template_fields
    assert deploy(job_lifespan=600).job_lifespan == 600


def spec_tags(operator: NeuroDeployOperator) -> list[str]:
    return [t for t in operator.job_request().job_tags if t.startswith("airflow-spec:")]


def test_the_spec_tag_changes_with_the_job_and_only_with_it() -> None:
    [tag] = spec_tags(deploy())
    assert spec_tags(deploy()) == [tag]
    assert spec_tags(deploy(task_id="elsewhere", health_path="/health")) == [tag]
    for changed in (
        {"job_command": "python3 serve.py --v2"},
        {"job_environ": {"MODEL": "v2"}},
        {"job_volumes": ["storage:m:/m:ro"]},
        {"job_http_port": 8081},
        {"job_resources_preset": "cpu-large"},
        {"job_http_auth": False},
    ):
        assert spec_tags(deploy(**changed)) != [tag], changed


def test_resuming_gives_the_same_xcom_or_error_as_waiting() -> None:
    info = ServiceInfo(JobSummary.of(job("running")), "model", "http://h/", None, 2.0)
    xcom = deploy().execute_complete({}, ServiceEvent.ready(info).to_json())
    assert xcom == info.xcom()
    failed = ServiceEvent.failed("job-1", ServiceNotReady("did not answer /health in time"))
    with pytest.raises(ServiceNotReady, match="did not answer /health in time"):
        deploy().execute_complete({}, failed.to_json())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "FETCH"}, "method: must be one of"),
        ({"json": {"x": 1}, "data": "x"}, "json: give json or data, not both"),
        ({"timeout": "soon"}, "timeout: must be a finite number of seconds, got 'soon'"),
        ({"auth": "yes"}, "auth: must be True or False, got 'yes'"),
        ({"retry_statuses": [503, 600]}, "retry_statuses: must be HTTP status codes"),
        ({"response_check": "ok"}, "response_check: must be a callable"),
    ],
)
def test_request_arguments_are_checked_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(JobArgumentError) as raised:
        NeuroModelRequestOperator(task_id="ask", endpoint="model", **kwargs)
    assert str(raised.value).startswith(message)


def test_predict_posts_its_body_and_info_gets() -> None:
    predict = NeuroModelPredictOperator(task_id="p", endpoint="m", request_body={"x": [1]})
    assert (predict.method, predict.path, predict.json, predict.data) == (
        "POST", "/predict", {"x": [1]}, None
    )  # fmt: skip
    raw = NeuroModelPredictOperator(task_id="r", endpoint="m", request_body="1,2,3")
    assert (raw.json, raw.data) == (None, "1,2,3")
    info = NeuroModelInfoOperator(task_id="i", endpoint="m")
    assert (info.method, info.path) == ("GET", "/info")
    assert {"endpoint", "path", "json", "data", "headers"} <= set(info.template_fields)


@pytest.mark.parametrize("kwargs", [{}, {"job_name": "m", "job_id": "job-1"}])
def test_undeploy_takes_a_name_or_an_id(kwargs: dict[str, Any]) -> None:
    with pytest.raises(JobArgumentError, match=r"^job_name: give a job_name or a job_id"):
        NeuroUndeployOperator(task_id="stop", **kwargs)


class FakeHook:
    """What _service_job asks the platform, answered from a list of live jobs: another
    user's job cannot be made on the one-user local platform."""

    def __init__(self, *live: apolo_sdk.JobDescription) -> None:
        self.live = list(live)
        self.cancelled: list[str] = []
        self.submitted: list[JobRequest] = []
        self.client = SimpleNamespace(config=SimpleNamespace(username="me"))

    def find_jobs(self, tags: Any, statuses: Any, name: str | None = None) -> list[Any]:
        return [j for j in self.live if j.name == name]

    def cancel_job(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    def wait_for_job(self, job_id: str, statuses: Any, poll_interval: float) -> None:
        pass

    def submit_job(self, request: JobRequest, identity: TaskIdentity) -> apolo_sdk.JobDescription:
        self.submitted.append(request)
        return job("pending", job_id="job-new")


IDENTITY = TaskIdentity("d", "deploy", "run-2", -1, 1)


def live_service(spec: str, owner: str = "me", started_by: str = "run-1") -> Any:
    tags = [*TaskIdentity("d", "deploy", started_by, -1, 1).tags, spec]
    return dataclasses.replace(job("running", job_id="job-old"), name="model", owner=owner,
                               tags=tags)  # fmt: skip


def choose(operator: NeuroDeployOperator, hook: FakeHook) -> str:
    chosen = operator._service_job(hook, IDENTITY, operator.job_request())  # type: ignore[arg-type]
    return chosen.id


def test_a_live_service_is_reused_replaced_or_refused_as_asked() -> None:
    same = spec_tags(deploy())[0]
    hook = FakeHook(live_service(same))
    assert choose(deploy(), hook) == "job-old"  # reuse, same spec
    assert (hook.cancelled, hook.submitted) == ([], [])

    changed = FakeHook(live_service("airflow-spec:0000"))
    assert choose(deploy(), changed) == "job-new"
    assert changed.cancelled == ["job-old"]

    replaced = FakeHook(live_service(same))
    assert choose(deploy(if_exists="replace"), replaced) == "job-new"
    assert replaced.cancelled == ["job-old"]

    refused = FakeHook(live_service(same))
    with pytest.raises(NeuroJobError, match=r"^job_name: live job job-old is named 'model'"):
        choose(deploy(if_exists="fail"), refused)
    assert refused.cancelled == []


def test_an_earlier_try_of_this_task_is_taken_over_even_with_if_exists_fail() -> None:
    mine = live_service(spec_tags(deploy())[0], started_by="run-2")
    assert choose(deploy(if_exists="fail"), FakeHook(mine)) == "job-old"


@pytest.mark.parametrize("if_exists", ["reuse", "replace"])
def test_another_users_service_is_never_reused_or_stopped(if_exists: str) -> None:
    hook = FakeHook(live_service(spec_tags(deploy())[0], owner="alice"))
    with pytest.raises(NeuroJobError, match="is taken by live job job-old of user alice"):
        choose(deploy(if_exists=if_exists), hook)
    assert (hook.cancelled, hook.submitted) == ([], [])


def test_a_killed_deploy_cancels_only_a_service_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    cancelled: list[str | None] = []
    operator = deploy()
    monkeypatch.setattr(operator, "_cancel", lambda: cancelled.append(operator.job_id))
    operator.job_id = "job-reused"
    operator.on_kill()  # a reused service: not this task's to stop
    assert cancelled == []
    operator._ours = True
    operator.on_kill()
    assert cancelled == ["job-reused"]
