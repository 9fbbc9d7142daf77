"""DAGs for the job cache tests: each task is cached, and the runs' params decide the key."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_neuro.operators.neuro import NeuroRunOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")
SHARED = "sh -c 'echo computed once'"

with DAG("scenario_cache", schedule=None, start_date=START, catchup=False,
         params={"word": "a", "value": "1", "extra": "x"}):  # fmt: skip
    NeuroRunOperator(
        task_id="same", job_command=SHARED, job_image="ubuntu", job_detach=False, cache=True
    )
    NeuroRunOperator(
        task_id="command", job_command="echo {{ params.word }}", job_image="ubuntu",
        job_detach=False, cache=True,
    )  # fmt: skip
    NeuroRunOperator(
        task_id="env",
        job_command="sh -c 'echo $VALUE'",
        job_image="ubuntu",
        job_environ={"VALUE": "{{ params.value }}", "RUN_ID": "{{ run_id }}"},
        cache_ignore_env=["RUN_ID"],
        job_detach=False,
        cache=True,
    )
    NeuroRunOperator(
        task_id="extra", job_command="echo extra", job_image="ubuntu", job_detach=False,
        cache=True, cache_key_extra="{{ params.extra }}",
    )  # fmt: skip
    NeuroRunOperator(
        task_id="inputs", job_command="echo inputs", job_image="ubuntu", job_detach=False,
        cache=True, cache_inputs=["cache-e2e/in"],
    )  # fmt: skip
    NeuroRunOperator(
        task_id="outputs",
        job_command="sh -c 'echo result > /out/result'",
        job_image="ubuntu",
        job_volumes=["storage:cache-e2e/out:/out"],
        job_detach=False,
        cache=True,
        cache_outputs=["cache-e2e/out/result"],
    )
    NeuroRunOperator(
        task_id="ttl", job_command="echo ttl", job_image="ubuntu", job_detach=False,
        cache=True, cache_ttl=timedelta(seconds=2),
    )  # fmt: skip
    NeuroRunOperator(
        task_id="failing", job_command="sh -c 'exit 4'", job_image="ubuntu", job_detach=False,
        cache=True,
    )  # fmt: skip

with DAG("scenario_cache_refresh", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="refresh", job_command=SHARED, job_image="ubuntu", job_detach=False,
        cache=True, cache_mode="refresh",
    )  # fmt: skip
