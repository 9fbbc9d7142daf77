"""NeuroJobTrigger's serialized form and the events it fires with."""

from __future__ import annotations

import pytest

from airflow_neuro.client import JobSummary
from airflow_neuro.exceptions import NeuroJobError
from airflow_neuro.triggers.events import JobEvent
from airflow_neuro.triggers.neuro import NeuroJobTrigger

from ..jobs import job


def test_serialize_pins_the_classpath_and_every_argument() -> None:
    trigger = NeuroJobTrigger(job_id="job-x", statuses=["running"], follow_log=True)
    path, kwargs = trigger.serialize()
    assert path == "airflow_neuro.triggers.neuro.NeuroJobTrigger"
    assert kwargs == {
        "job_id": "job-x",
        "neuro_conn_id": "neuro_default",
        "statuses": ["running"],
        "poll_interval": 10.0,
        "follow_log": True,
        "cancel_on_kill": True,
        "retry_budget": 300.0,
    }
    assert NeuroJobTrigger(**kwargs).serialize() == (path, kwargs)


def test_by_default_the_trigger_waits_for_the_end() -> None:
    assert set(NeuroJobTrigger(job_id="j").statuses) == {"succeeded", "failed", "cancelled"}


def test_events_round_trip_through_json() -> None:
    summary = JobSummary.of(job("failed", 2))
    payload = JobEvent.done(summary).to_json()
    assert payload["result"] == "done"
    assert payload["job"]["exit_code"] == 2
    assert JobEvent.from_json(payload).job_or_raise() == summary
    failed = JobEvent.from_json(JobEvent.failed("job-1", TimeoutError("slow")).to_json())
    with pytest.raises(NeuroJobError, match="waiting for job job-1 failed: TimeoutError: slow"):
        failed.job_or_raise()


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"result": "done"}, {"result": "done", "job": {"id": "j", "status": "bogus"}}],
)
def test_malformed_events_are_errors_not_key_errors(payload: object) -> None:
    with pytest.raises(NeuroJobError):
        JobEvent.from_json(payload)
