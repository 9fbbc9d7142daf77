"""What the triggers fire with, typed at both ends: the trigger writes it, the operator
and the sensor read it back with the same class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_neuro.client.service import ServiceInfo
from airflow_neuro.client.summary import JobSummary
from airflow_neuro.exceptions import NeuroJobError, ServiceEnded, ServiceNotReady, ServiceRefused


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


# What a failed readiness wait was, so the operator raises the same error class whether it
# waited itself or resumed from the triggerer.
SERVICE_ERRORS: dict[str, type[NeuroJobError]] = {
    "ended": ServiceEnded,
    "not_ready": ServiceNotReady,
    "refused": ServiceRefused,
    "error": NeuroJobError,
}


@dataclass(frozen=True)
class ServiceEvent:
    """The service answered (``service``), or waiting for it failed (``kind``, ``message``)."""

    job_id: str
    service: ServiceInfo | None = None
    kind: str = "error"
    message: str | None = None
    job: JobSummary | None = None

    @classmethod
    def ready(cls, service: ServiceInfo) -> ServiceEvent:
        return cls(job_id=service.job.id, service=service)

    @classmethod
    def failed(cls, job_id: str, error: BaseException) -> ServiceEvent:
        kind = next((k for k, c in SERVICE_ERRORS.items() if type(error) is c), "error")
        message = str(error) if kind != "error" else f"{type(error).__name__}: {error}"
        job = error.job if isinstance(error, NeuroJobError) else None
        return cls(job_id=job_id, kind=kind, message=message, job=job)

    def to_json(self) -> dict[str, Any]:
        if self.service is not None:
            return {"result": "ready", "service": self.service.to_json()}
        return {
            "result": "error",
            "job_id": self.job_id,
            "kind": self.kind,
            "message": self.message,
            "job": self.job.to_json() if self.job is not None else None,
        }

    @classmethod
    def from_json(cls, event: Any) -> ServiceEvent:
        if isinstance(event, dict) and event.get("result") == "ready":
            try:
                return cls.ready(ServiceInfo.from_json(event.get("service")))
            except (TypeError, ValueError) as e:
                raise NeuroJobError(f"the trigger event carries no valid service: {e}") from None
        if isinstance(event, dict) and event.get("result") == "error":
            job = event.get("job")
            return cls(
                job_id=str(event.get("job_id")),
                kind=str(event.get("kind")) if event.get("kind") in SERVICE_ERRORS else "error",
                message=str(event.get("message")),
                job=JobSummary.from_json(job) if job is not None else None,
            )
        raise NeuroJobError(f"not an event of NeuroServiceTrigger: {event!r}")

    def service_or_raise(self) -> ServiceInfo:
        """The service that answered, or the same error the wait itself would have raised."""
        if self.service is None:
            raise SERVICE_ERRORS[self.kind](str(self.message), self.job)
        return self.service
