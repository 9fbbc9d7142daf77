"""The job facts the operator shares through XCom, and the failures it reports.

A job is summed up as a plain dict so that the same checks serve a task that waited
itself and one that resumes from a trigger event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import apolo_sdk

from airflow_neuro.exceptions import NeuroJobError

XCOM_KEYS = ("id", "exit_code", "status", "http_url")


def summary(job: apolo_sdk.JobDescription) -> dict[str, Any]:
    history = job.history
    return {
        "id": job.id,
        "exit_code": history.exit_code,
        "status": job.status.value,
        "http_url": str(job.http_url) if job.http_url else None,
        "reason": history.reason or None,
        "description": history.description or None,
        "ran": history.started_at is not None,
    }


def job_info(job: apolo_sdk.JobDescription | Mapping[str, Any]) -> dict[str, Any]:
    """``{"id", "exit_code", "status", "http_url"}``, the documented XCom shape."""
    facts = summary(job) if isinstance(job, apolo_sdk.JobDescription) else job
    return {key: facts[key] for key in XCOM_KEYS}


def describe(job: apolo_sdk.JobDescription | Mapping[str, Any]) -> str:
    facts = summary(job) if isinstance(job, apolo_sdk.JobDescription) else job
    return (
        f"job {facts['id']} {facts['status']}: reason={facts['reason'] or '-'},"
        f" description={facts['description'] or '-'}, exit code={facts['exit_code']}"
    )


def check_outcome(job: apolo_sdk.JobDescription | Mapping[str, Any], raise_on_errno: bool) -> None:
    """Fail on a cancelled job or one that never ran; on a non-zero exit only when asked."""
    facts = summary(job) if isinstance(job, apolo_sdk.JobDescription) else job
    never_ran = not facts["ran"] or facts["exit_code"] is None
    status = facts["status"]
    if status == "cancelled" or (status == "failed" and (never_ran or raise_on_errno)):
        raise NeuroJobError(describe(facts))
