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


class NeuroJobError(AirflowException):
    """A platform job ended in a way that fails the task, or could not be waited on.

    ``job`` is the job's summary when there is one (its status, reason, description and
    exit code are in the message too).
    """

    def __init__(self, message: str, job: JobSummary | None = None) -> None:
        super().__init__(message)
        self.job = job
