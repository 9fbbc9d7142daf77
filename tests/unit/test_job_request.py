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
        ({"job_schedule_timeout": float("nan")}, "job_schedule_timeout", "finite number"),
        ({"job_schedule_timeout": float("inf")}, "job_schedule_timeout", "finite number"),
        ({"job_schedule_timeout": 0}, "job_schedule_timeout", "at least 1 and less than 2592000"),
        ({"job_schedule_timeout": 30 * 86400}, "job_schedule_timeout", "less than 2592000"),
        ({"job_schedule_timeout": True}, "job_schedule_timeout", "finite number of seconds"),
        ({"job_schedule_timeout": "60"}, "job_schedule_timeout", "finite number of seconds"),
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
        ({"job_lifespan": float("nan")}, "job_lifespan", "finite number of seconds, got nan"),
        ({"job_lifespan": float("inf")}, "job_lifespan", "finite number of seconds, got inf"),
        ({"job_lifespan": True}, "job_lifespan", "finite number of seconds, got True"),
        ({"job_lifespan": 101 * 365 * 86400}, "job_lifespan", "at most 3153600000"),
        ({"job_http_port": True}, "job_http_port", "must be a port number, got True"),
        ({"job_extshm": "no"}, "job_extshm", "must be True or False, got 'no'"),
        ({"job_http_auth": 0}, "job_http_auth", "must be True or False, got 0"),
        ({"job_tty": None}, "job_tty", "must be True or False"),
        ({"job_tags": "abc"}, "job_tags", "list of strings"),
        ({"job_volumes": "storage:data:/data"}, "job_volumes", r"got str \(put it in a list"),
        ({"job_volumes": {"storage:d": "/d"}}, "job_volumes", "got dict"),
        ({"job_volumes": ["storage:../../..:/mnt"]}, "job_volumes[0]", "'..' is not allowed"),
        ({"job_volumes": ["storage:a/../../b:/b"]}, "job_volumes[0]", "'..' is not allowed"),
        ({"job_volumes": ["storage:%2e%2e/x:/x"]}, "job_volumes[0]", "'..' is not allowed"),
        ({"job_volumes": ["storage://c/o/p/../q:/q"]}, "job_volumes[0]", "'..' is not"),
        ({"job_volumes": ["storage::/x"]}, "job_volumes[0]", "the storage path is empty"),
        ({"job_volumes": ["storage:/:/x"]}, "job_volumes[0]", "the storage path is empty"),
        ({"job_volumes": ["storage:d:/d"] * 129}, "job_volumes", "at most 128 volumes"),
        ({"job_environ": [("A", "1")]}, "job_environ", r"dict\(pairs\) makes one"),
        ({"job_environ": {"A=B": "1"}}, "job_environ", "is not a variable name"),
        ({"job_environ": {"": "1"}}, "job_environ", "is not a variable name"),
        ({"job_environ": {"A": "x\0y"}}, "job_environ['A']", "NUL"),
        ({"job_command": "echo \0"}, "job_command", "NUL"),
        ({"job_command": "x" * 131_073}, "job_command", "at most 131072 characters"),
        ({"job_description": "d" * 16_385}, "job_description", "at most 16384 characters"),
        ({"job_resources": "cpu-small"}, "job_resources", "must be an apolo_sdk.Resources"),
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
