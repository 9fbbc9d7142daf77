"""NeuroRunOperator: construction, and resuming from trigger events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import apolo_sdk
import pytest

from airflow_neuro.client import JobSummary
from airflow_neuro.exceptions import JobArgumentError, NeuroJobError
from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.triggers.events import JobEvent

from ..jobs import job


def test_template_fields_are_the_documented_ones() -> None:
    assert set(NeuroRunOperator.template_fields) == {
        "job_command", "job_image", "job_volumes", "job_name", "job_resources_preset",
        "job_tags", "job_environ", "job_entrypoint", "job_description", "job_http_port",
        "job_working_dir", "neuro_conn_id", "cache_key_extra", "cache_inputs", "cache_outputs",
    }  # fmt: skip


def test_preset_and_resources_together_fail_at_parse_time() -> None:
    with pytest.raises(JobArgumentError, match="job_resources_preset: give a preset or"):
        NeuroRunOperator(
            task_id="t",
            job_command="true",
            job_image="ubuntu",
            job_resources_preset="cpu-small",
            job_resources=apolo_sdk.Resources(memory=2**30, cpu=1),
        )


def operator(**kwargs: Any) -> NeuroRunOperator:
    return NeuroRunOperator(task_id="t", job_command="true", job_image="ubuntu", **kwargs)


def event_of(status: str, exit_code: int | None) -> dict[str, Any]:
    return JobEvent.done(JobSummary.of(job(status, exit_code))).to_json()


def test_resuming_returns_the_documented_xcom() -> None:
    context: Any = {}
    result = operator().execute_complete(context, event_of("succeeded", 0))
    assert result == {"id": "job-1", "exit_code": 0, "status": "succeeded", "http_url": None}


def test_resuming_applies_raise_on_errno() -> None:
    context: Any = {}
    with pytest.raises(NeuroJobError, match="job job-1 failed: reason=Error") as failed:
        operator().execute_complete(context, event_of("failed", 3))
    assert failed.value.job is not None
    assert failed.value.job.exit_code == 3
    recorded = operator(raise_on_errno=False).execute_complete(context, event_of("failed", 3))
    assert recorded["exit_code"] == 3


def test_resuming_from_a_failed_wait_names_the_job_and_the_cause() -> None:
    context: Any = {}
    event = JobEvent.failed("job-9", RuntimeError("the platform went away")).to_json()
    with pytest.raises(NeuroJobError, match="waiting for job job-9 failed: RuntimeError: the"):
        operator().execute_complete(context, event)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cache_mode": "always"}, "cache_mode: must be one of ('reuse', 'refresh')"),
        ({"cache_ttl": 0}, "cache_ttl: must be a positive timedelta or seconds"),
        ({"cache_ttl": "1d"}, "cache_ttl: must be a positive timedelta or seconds"),
        ({"cache_inputs": "data/"}, "cache_inputs: must be a list of strings"),
        ({"cache_outputs": [""]}, "cache_outputs: must be a list of non-empty strings"),
        ({"cache_ignore_env": [1]}, "cache_ignore_env: must be a list of non-empty strings"),
    ],
)
def test_cache_arguments_are_checked_at_parse_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(JobArgumentError) as raised:
        operator(cache=True, **kwargs)
    assert str(raised.value).startswith(message)


def test_the_cache_ttl_takes_seconds_or_a_timedelta() -> None:
    assert operator(cache_ttl=60).cache_ttl == timedelta(minutes=1)
    assert operator().cache_ttl == timedelta(days=14)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job_lifespan": float("nan")}, "job_lifespan: must be a finite number of seconds"),
        ({"job_lifespan": float("inf")}, "job_lifespan: must be a finite number of seconds"),
        ({"job_lifespan": True}, "job_lifespan: must be a finite number of seconds, got True"),
        ({"job_schedule_timeout": -1}, "job_schedule_timeout: must be at least 1"),
        ({"job_restart_policy": "often"}, "job_restart_policy: must be one of never"),
        ({"poll_interval": 0}, "poll_interval: must be more than 0 seconds"),
        ({"poll_interval": True}, "poll_interval: must be a finite number of seconds"),
        ({"retry_budget": float("inf")}, "retry_budget: must be a finite number of seconds"),
        ({"retry_budget": -5}, "retry_budget: must be at least 0 seconds"),
        ({"job_detach": "false"}, "job_detach: must be True or False, got 'false'"),
        ({"deferrable": 1}, "deferrable: must be True or False, got 1"),
        ({"cancel_on_kill": None}, "cancel_on_kill: must be True or False"),
        ({"raise_on_errno": "no"}, "raise_on_errno: must be True or False"),
        ({"job_http_auth": "off"}, "job_http_auth: must be True or False"),
        ({"job_is_preemptible": 0}, "job_is_preemptible: must be True or False"),
    ],
)
def test_arguments_that_are_not_templated_fail_the_dag_file(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(JobArgumentError) as raised:
        operator(**kwargs)
    assert str(raised.value).startswith(message)


def test_templated_arguments_are_kept_as_given_until_they_are_rendered() -> None:
    # A string is never taken apart into characters, nor pairs into a mapping: after
    # templating, the check names the argument.
    pairs: Any = [("A", "1")]
    made = operator(job_tags="abc", job_volumes="storage:d:/d", job_environ=pairs)
    assert made.job_tags == "abc"
    assert made.job_volumes == "storage:d:/d"
    assert made.job_environ is pairs
    for argument in ("job_tags", "job_volumes", "job_environ"):
        one_bad = operator(**{argument: getattr(made, argument)})
        with pytest.raises(JobArgumentError) as raised:
            one_bad.job_request().check()
        assert raised.value.argument == argument
