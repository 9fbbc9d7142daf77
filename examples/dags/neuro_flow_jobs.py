"""Run the jobs of an apolo-flow project (examples/flow) as Airflow tasks.

The jobs, their images, volumes, env and params are defined once, in
``examples/flow/.apolo/live.yml``; Airflow decides when they run and in what order. The
DAG's ``rows`` param fills the ``prepare`` job's param of the same name.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_neuro.operators.flow import NeuroFlowJobOperator

with DAG(
    dag_id="neuro_flow_jobs",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"rows": Param(100, type="integer", minimum=1, description="numbers to write")},
    tags=["neuro", "example", "flow"],
) as dag:
    # A relative flow_file is looked up next to this file, then in the DAGs folder.
    prepare = NeuroFlowJobOperator(task_id="prepare", flow_file="../flow", job="prepare")
    total = NeuroFlowJobOperator(
        task_id="total",
        flow_file="../flow",
        job="total",
        job_environ={"RUN_ID": "{{ run_id }}"},  # added to the file's env
    )

    prepare >> total
