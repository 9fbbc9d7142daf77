"""Tasks for the CeleryExecutor deployment: a worker lost mid-job, and many deferred tasks
shared by two workers and the triggerer."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_neuro.operators.neuro import NeuroRunOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")
# Long enough to outlive the lost worker's detection (10 s without a heartbeat), the retry
# delay and the retry's start on the other worker, with room to spare on a busy machine.
COUNTED_LINES = 30
DEFERRED_TASKS = 50

with DAG("celery_lost_worker", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="count",
        job_command=f"sh -c 'for i in $(seq 1 {COUNTED_LINES}); do echo line $i; sleep 1; done'",
        job_image="ubuntu",
        job_detach=False,
        deferrable=False,
        poll_interval=1,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

with DAG("celery_deferred_many", schedule=None, start_date=START, catchup=False,
         max_active_tasks=DEFERRED_TASKS):  # fmt: skip
    for n in range(DEFERRED_TASKS):
        NeuroRunOperator(
            task_id=f"job_{n:02d}",
            job_command=f"sh -c 'echo task {n}; sleep 2'",
            job_image="ubuntu",
            # Half stream their job's log through the trigger, half resume once it runs.
            job_detach=n % 2 == 1,
            deferrable=True,
            poll_interval=1,
        )
