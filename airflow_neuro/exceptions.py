"""Every error the provider raises."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_neuro.compat import AirflowException

if TYPE_CHECKING:
    from airflow_neuro.client.summary import JobSummary


class JobArgumentError(ValueError):
    """A job argument the platform would refuse; the message names the argument."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument


class NeuroConnectionError(ValueError):
    """A ``neuro`` connection that cannot be used as it is; the message names it."""


class PlatformUnavailable(ConnectionError):
    """The platform kept failing for longer than the retry budget."""


class PlatformUnreachable(PlatformUnavailable, NeuroConnectionError):
    """A login that the platform did not answer within the retry budget.

    Both an outage and a connection problem: ``except PlatformUnavailable`` and ``except
    NeuroConnectionError`` each see it, and the message names the connection and the cause.
    """


class UnsafeCredentialsDir(PermissionError):
    """The directory where logins keep their tokens is not this user's own."""


class NeuroJobError(AirflowException):
    """A platform job ended in a way that fails the task, or could not be waited on.

    ``job`` is the job's summary when there is one (its status, reason, description and
    exit code are in the message too).
    """

    def __init__(self, message: str, job: JobSummary | None = None) -> None:
        super().__init__(message)
        self.job = job


class ServiceError(NeuroJobError):
    """A served model (a job with an HTTP port) did not do what was asked of it."""


class ServiceEnded(ServiceError):
    """The service's job ended before it answered its health check."""


class ServiceNotReady(ServiceError):
    """The service did not answer its health check in time."""


class ServiceRefused(ServiceError):
    """The service or the platform refused the credentials (401 or 403)."""


class ServiceRequestError(ServiceError):
    """A request to a service got an answer that fails the task (not 2xx, or a failed
    ``response_check``); ``status`` is the HTTP status, when there was an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
