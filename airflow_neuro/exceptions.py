"""Errors the provider raises."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:
    import apolo_sdk


class NeuroJobError(AirflowException):
    """A platform job ended in a way that fails the task; the job is attached."""

    def __init__(self, message: str, job: apolo_sdk.JobDescription | None = None) -> None:
        super().__init__(message)
        self.job = job
