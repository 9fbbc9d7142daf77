"""The job facts the provider passes around: XCom, trigger events and outcome checks.

One typed summary serves a task that waited itself and one that resumes from a trigger
event, so both reach the same verdict from the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import apolo_sdk

from airflow_neuro.exceptions import NeuroJobError

JobStatus = apolo_sdk.JobStatus

LIVE = frozenset({JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUSPENDED})
FINISHED = frozenset(s for s in JobStatus if s.is_finished)
STARTED = FINISHED | {JobStatus.RUNNING}


@dataclass(frozen=True)
class JobSummary:
    """What the provider needs to know of a job, in a JSON-safe form."""

    id: str
    status: str  # an apolo_sdk.JobStatus value
    exit_code: int | None = None
    http_url: str | None = None
    reason: str | None = None
    description: str | None = None
    ran: bool = False  # the container started at some point

    @classmethod
    def of(cls, job: apolo_sdk.JobDescription) -> JobSummary:
        history = job.history
        return cls(
            id=job.id,
            status=job.status.value,
            exit_code=history.exit_code,
            http_url=str(job.http_url) if job.http_url else None,
            reason=history.reason or None,
            description=history.description or None,
            ran=history.started_at is not None,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobSummary:
        """The summary back from ``to_json()``; a field that is missing or of the wrong type
        is an error here, not a KeyError three calls later."""
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise ValueError(f"not a job summary: {data!r}")
        JobStatus(data.get("status"))  # an unknown status is refused here
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def xcom(self) -> dict[str, Any]:
        """``{"id", "exit_code", "status", "http_url"}``: the documented XCom shape."""
        return {
            "id": self.id,
            "exit_code": self.exit_code,
            "status": self.status,
            "http_url": self.http_url,
        }

    @property
    def is_finished(self) -> bool:
        return JobStatus(self.status).is_finished

    def describe(self) -> str:
        return (
            f"job {self.id} {self.status}: reason={self.reason or '-'},"
            f" description={self.description or '-'}, exit code={self.exit_code}"
        )

    def check_outcome(self, raise_on_errno: bool) -> None:
        """Fail on a cancelled job or one that never ran; on a non-zero exit only when asked."""
        never_ran = not self.ran or self.exit_code is None
        if self.status == JobStatus.CANCELLED.value or (
            self.status == JobStatus.FAILED.value and (never_ran or raise_on_errno)
        ):
            raise NeuroJobError(self.describe(), job=self)
