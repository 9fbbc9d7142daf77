"""The host Airflow records for a task run by a Celery worker of the deployment suite: the
worker's name. Both workers run on one machine, whose name cannot tell them apart, so each
points `[core] hostname_callable` here."""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ["DEPLOYMENT_WORKER_NAME"]
