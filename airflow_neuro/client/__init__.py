"""The async layer every platform step goes through: connection, login, retries, jobs.

It imports nothing from the hooks, operators, sensors or triggers above it.
"""

from __future__ import annotations

try:
    import apolo_sdk  # noqa: F401
except ModuleNotFoundError as e:  # neither SDK distribution was chosen at install
    raise ModuleNotFoundError(
        "airflow-neuro needs a platform SDK: pip install 'airflow-neuro[apolo]'"
        " (apolo-sdk) or 'airflow-neuro[neuro]' (neuro-sdk)",
        name=e.name,
    ) from e

from airflow_neuro.client.connection import NeuroConnectionParams
from airflow_neuro.client.identity import TaskIdentity
from airflow_neuro.client.neuro import NeuroClient, cancel_job
from airflow_neuro.client.summary import FINISHED, LIVE, STARTED, JobSummary

__all__ = [
    "FINISHED",
    "LIVE",
    "STARTED",
    "JobSummary",
    "NeuroClient",
    "NeuroConnectionParams",
    "TaskIdentity",
    "cancel_job",
]
