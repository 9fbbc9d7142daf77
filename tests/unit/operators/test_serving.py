"""The serving operators: arguments checked at parse time, the spec fingerprint, resuming."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_neuro.client import JobSummary
from airflow_neuro.client.service import ServiceInfo
from airflow_neuro.exceptions import JobArgumentError, ServiceNotReady
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
        ({"ready_timeout": -1}, "ready_timeout: must be a positive number of seconds"),
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
        ({"timeout": "soon"}, "timeout: must be a positive number of seconds"),
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
