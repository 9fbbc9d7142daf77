"""The jobs of tests/e2e/flows/compat, one task each, for the comparison with apolo-flow."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_neuro.operators.flow import NeuroFlowJobOperator

JOBS = ("plain", "scripted", "pythonic", "served")

with DAG(
    dag_id="flow_compat",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    for job in JOBS:
        NeuroFlowJobOperator(
            task_id=job,
            flow_file="../flows/compat",
            job=job,
            params={"count": "4", "word": "hi"} if job == "scripted" else None,
            poll_interval=0.2,
            deferrable=job == "pythonic",  # one waits in the triggerer: the same job either way
        )
