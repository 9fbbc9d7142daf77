"""The job facts the operator shares through XCom, and the failures it reports."""

from __future__ import annotations

from typing import Any

import apolo_sdk

from airflow_neuro.exceptions import NeuroJobError


def job_info(job: apolo_sdk.JobDescription) -> dict[str, Any]:
    """``{"id", "exit_code", "status", "http_url"}``, the documented XCom shape."""
    return {
        "id": job.id,
        "exit_code": job.history.exit_code,
        "status": job.status.value,
        "http_url": str(job.http_url) if job.http_url else None,
    }


def describe(job: apolo_sdk.JobDescription) -> str:
    history = job.history
    return (
        f"job {job.id} {job.status.value}: reason={history.reason or '-'},"
        f" description={history.description or '-'}, exit code={history.exit_code}"
    )


def ran(job: apolo_sdk.JobDescription) -> bool:
    return job.history.started_at is not None


def check_outcome(job: apolo_sdk.JobDescription, raise_on_errno: bool) -> None:
    """Fail on a cancelled job or one that never ran; on a non-zero exit only when asked."""
    status = job.status
    never_ran = not ran(job) or job.history.exit_code is None
    if status == apolo_sdk.JobStatus.CANCELLED or (
        status == apolo_sdk.JobStatus.FAILED and (never_ran or raise_on_errno)
    ):
        raise NeuroJobError(describe(job), job)
