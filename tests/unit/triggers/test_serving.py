"""NeuroServiceTrigger's serialized form and the events it fires with."""

from __future__ import annotations

import pytest

from airflow_neuro.client import JobSummary
from airflow_neuro.client.service import ServiceInfo
from airflow_neuro.exceptions import (
    NeuroJobError,
    PlatformUnavailable,
    ServiceEnded,
    ServiceNotReady,
    ServiceRefused,
)
from airflow_neuro.triggers.events import ServiceEvent
from airflow_neuro.triggers.serving import NeuroServiceTrigger

from ..jobs import job


def test_serialize_pins_the_classpath_and_every_argument() -> None:
    trigger = NeuroServiceTrigger(job_id="job-x", deadline=1e9, health_path="/health")
    path, kwargs = trigger.serialize()
    assert path == "airflow_neuro.triggers.serving.NeuroServiceTrigger"
    assert kwargs == {
        "job_id": "job-x",
        "deadline": 1e9,
        "neuro_conn_id": "neuro_default",
        "health_path": "/health",
        "health_statuses": [200],
        "auth": True,
        "poll_interval": 10.0,
        "cancel_on_failure": False,
        "retry_budget": 300.0,
    }
    assert NeuroServiceTrigger(**kwargs).serialize() == (path, kwargs)


def test_a_ready_event_round_trips() -> None:
    info = ServiceInfo(JobSummary.of(job("running")), "m", "http://h/", None, 0.5)
    assert ServiceEvent.from_json(ServiceEvent.ready(info).to_json()).service_or_raise() == info


@pytest.mark.parametrize("error", [ServiceEnded, ServiceNotReady, ServiceRefused])
def test_a_failed_wait_raises_the_same_error_after_resuming(error: type[NeuroJobError]) -> None:
    summary = JobSummary.of(job("failed", 3))
    event = ServiceEvent.failed("job-1", error("exit code 3, last lines ...", summary))
    resumed = ServiceEvent.from_json(event.to_json())
    with pytest.raises(error, match=r"^exit code 3, last lines \.\.\.$") as raised:
        resumed.service_or_raise()
    assert raised.value.job == summary


def test_any_other_failure_is_a_job_error_that_names_its_kind() -> None:
    event = ServiceEvent.failed("job-1", PlatformUnavailable("the platform did not answer"))
    with pytest.raises(NeuroJobError, match=r"^PlatformUnavailable: the platform did not answer$"):
        ServiceEvent.from_json(event.to_json()).service_or_raise()


@pytest.mark.parametrize("payload", [None, {"result": "ready", "service": {}}, {"result": "?"}])
def test_a_foreign_payload_is_refused(payload: object) -> None:
    with pytest.raises(NeuroJobError):
        ServiceEvent.from_json(payload)
