"""What a served model's XCom holds, and how other jobs reach it."""

from __future__ import annotations

import dataclasses

import apolo_sdk

from airflow_neuro.client import JobSummary
from airflow_neuro.client.service import ServiceInfo, internal_url

from ..jobs import job


def served(**changes: object) -> apolo_sdk.JobDescription:
    running = job("running")
    container = dataclasses.replace(running.container, http=apolo_sdk.HTTPPort(8080, True))
    return dataclasses.replace(running, container=container, **changes)  # type: ignore[arg-type]


def test_other_jobs_use_the_named_host_when_there_is_one() -> None:
    assert internal_url(served(internal_hostname="job-1.ns")) == "http://job-1.ns:8080/"
    named = served(internal_hostname="job-1.ns", internal_hostname_named="m--me.ns")
    assert internal_url(named) == "http://m--me.ns:8080/"
    assert internal_url(served()) is None
    assert internal_url(job("running")) is None  # no HTTP port


def test_the_xcom_is_the_jobs_plus_the_service_urls() -> None:
    info = ServiceInfo(
        job=JobSummary.of(job("running")),
        name="m",
        http_url="https://m--me.jobs.c/",
        internal_url="http://m--me.ns:8080/",
        ready_after_s=1.23456,
    )
    assert info.xcom() == {
        "id": "job-1",
        "status": "running",
        "exit_code": None,
        "http_url": "https://m--me.jobs.c/",
        "name": "m",
        "internal_url": "http://m--me.ns:8080/",
        "ready_after_s": 1.235,
    }
    assert ServiceInfo.from_json(info.to_json()) == info
