"""What a NeuroJobTrigger fires with, typed at both ends: the trigger writes it, the
operator and the sensor read it back with the same class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_neuro.client.summary import JobSummary
from airflow_neuro.exceptions import NeuroJobError


@dataclass(frozen=True)
class JobEvent:
    """The job reached a wanted status (``job``), or waiting for it failed (``message``)."""

    job_id: str
    job: JobSummary | None = None
    message: str | None = None

    @classmethod
    def done(cls, job: JobSummary) -> JobEvent:
        return cls(job_id=job.id, job=job)

    @classmethod
    def failed(cls, job_id: str, error: BaseException) -> JobEvent:
        return cls(job_id=job_id, message=f"{type(error).__name__}: {error}")

    def to_json(self) -> dict[str, Any]:
        if self.job is not None:
            return {"result": "done", "job": self.job.to_json()}
        return {"result": "error", "job_id": self.job_id, "message": self.message}

    @classmethod
    def from_json(cls, event: Any) -> JobEvent:
        """The event as resumed; anything else (a stale or foreign payload) is an error."""
        if isinstance(event, dict) and event.get("result") == "done":
            try:
                job = JobSummary.from_json(event.get("job"))
            except (TypeError, ValueError) as e:
                raise NeuroJobError(f"the trigger event carries no valid job: {e}") from None
            return cls.done(job)
        if isinstance(event, dict) and event.get("result") == "error":
            return cls(job_id=str(event.get("job_id")), message=str(event.get("message")))
        raise NeuroJobError(f"not an event of NeuroJobTrigger: {event!r}")

    def job_or_raise(self) -> JobSummary:
        """The job the trigger waited for, or the failure it reported."""
        if self.job is None:
            raise NeuroJobError(f"waiting for job {self.job_id} failed: {self.message}")
        return self.job
