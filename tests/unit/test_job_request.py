"""Argument checks and job-request building, before anything is sent."""

from __future__ import annotations

from typing import Any

import apolo_sdk
import pytest

from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.job_request import JobRequest

IDENTITY = [
    "airflow-dag:d",
    "airflow-task:t",
    "airflow-run:r",
    "airflow-map-index:-1",
    "airflow-try:1",
]


def request(**kwargs: Any) -> JobRequest:
    return JobRequest(**{"job_command": "true", "job_image": "ubuntu", **kwargs})


def test_a_plain_request_passes() -> None:
    request(
        job_volumes=["storage:data:/data", "storage:out:/out:rw", "storage://c/o/p/x:/x:ro"],
        job_name="train-model",
        job_tags=["a", "b:c"],
        job_environ={"A": "1"},
        job_http_port="8080",
        job_lifespan=3600,
    ).check(IDENTITY)


@pytest.mark.parametrize(
    ("kwargs", "argument", "message"),
    [
        ({"job_command": ""}, "job_command", "non-empty string"),
        ({"job_working_dir": "src"}, "job_working_dir", "must be an absolute path"),
        ({"job_schedule_timeout": float("nan")}, "job_schedule_timeout", "positive number"),
        ({"job_schedule_timeout": 0}, "job_schedule_timeout", "positive number"),
        ({"job_schedule_timeout": True}, "job_schedule_timeout", "positive number"),
        ({"job_restart_policy": "sometimes"}, "job_restart_policy", "never, on-failure, always"),
        ({"job_pass_config": "yes"}, "job_pass_config", "must be True or False"),
        ({"job_image": None}, "job_image", "non-empty string"),
        ({"job_volumes": ["data:/data"]}, "job_volumes[0]", "is not 'storage:PATH:/MOUNT"),
        ({"job_volumes": ["storage:d:/d:wr"]}, "job_volumes[0]", "mode must be 'ro' or 'rw'"),
        ({"job_volumes": ["storage:d:relative"]}, "job_volumes[0]", "is not"),
        ({"job_volumes": [42]}, "job_volumes[0]", "string or a Volume"),
        ({"job_http_port": "http"}, "job_http_port", "must be a port number"),
        ({"job_http_port": 70000}, "job_http_port", "between 1 and 65535"),
        ({"job_environ": {"N": 1}}, "job_environ['N']", "values must be strings, got int"),
        ({"job_environ": ["A=1"]}, "job_environ", "mapping"),
        ({"job_tags": ["with space"]}, "job_tags", "white space"),
        ({"job_tags": "single"}, "job_tags", "list of strings"),
        ({"job_tags": [f"t{i}" for i in range(12)]}, "job_tags", "at most 11 tags"),
        ({"job_name": "ab"}, "job_name", "3 to 40 characters"),
        ({"job_name": "Upper"}, "job_name", "is not allowed"),
        ({"job_name": "job-reserved"}, "job_name", "is not allowed"),
        ({"job_lifespan": 30}, "job_lifespan", "at least 60"),
        (
            {"job_resources_preset": "cpu-small", "job_resources": apolo_sdk.Resources(1, 0.5)},
            "job_resources_preset",
            "not both",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], argument: str, message: str) -> None:
    with pytest.raises(JobArgumentError, match=message) as err:
        request(**kwargs).check(IDENTITY)
    assert err.value.argument == argument
    assert str(err.value).startswith(f"{argument}: ")


def test_http_port_accepts_numbers_and_numeric_strings() -> None:
    assert request(job_http_port=" 8080 ").http_port() == 8080
    assert request(job_http_port=80).http_port() == 80
    assert request().http_port() is None
