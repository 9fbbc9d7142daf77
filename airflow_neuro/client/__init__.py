"""The async layer every platform step goes through: connection, login, retries, jobs.

It imports nothing from the hooks, operators, sensors or triggers above it.
"""

from __future__ import annotations

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
