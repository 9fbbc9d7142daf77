"""NeuroJobStatusSensor: statuses, and resuming from trigger events."""

from __future__ import annotations

from typing import Any

import apolo_sdk
import pytest

from airflow_neuro.client import JobSummary
from airflow_neuro.exceptions import JobArgumentError, NeuroJobError
from airflow_neuro.sensors.neuro import NeuroJobStatusSensor, parse_statuses
from airflow_neuro.triggers.events import JobEvent

from ..jobs import job


def test_job_id_is_templated() -> None:
    assert set(NeuroJobStatusSensor.template_fields) >= {"job_id"}


def test_statuses_as_enums_or_names() -> None:
    assert parse_statuses(["Succeeded", apolo_sdk.JobStatus.FAILED]) == {
        apolo_sdk.JobStatus.SUCCEEDED,
        apolo_sdk.JobStatus.FAILED,
    }
    assert parse_statuses("running") == {apolo_sdk.JobStatus.RUNNING}
    with pytest.raises(JobArgumentError, match="job_statuses: unknown status 'done'"):
        parse_statuses(["done"])
    with pytest.raises(JobArgumentError, match="job_statuses: give at least one"):
        parse_statuses([])


def sensor(statuses: list[str]) -> NeuroJobStatusSensor:
    return NeuroJobStatusSensor(task_id="wait", job_id="job-1", job_statuses=statuses)


def test_a_wanted_status_ends_the_wait() -> None:
    context: Any = {}
    event = JobEvent.done(JobSummary.of(job("running"))).to_json()
    sensor(["running"]).execute_complete(context, event)


def test_a_finished_job_that_can_never_be_wanted_fails_at_once() -> None:
    context: Any = {}
    event = JobEvent.done(JobSummary.of(job("failed", 1))).to_json()
    with pytest.raises(NeuroJobError, match=r"job job-1 failed: .*; it will never be succeeded"):
        sensor(["succeeded"]).execute_complete(context, event)


def test_a_foreign_event_is_refused() -> None:
    context: Any = {}
    with pytest.raises(NeuroJobError, match="not an event of NeuroJobTrigger"):
        sensor(["succeeded"]).execute_complete(context, {"status": "success"})
