"""Deferred tasks for the deployment suite: they complete through the real triggerer."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.operators.serving import (
    NeuroDeployOperator,
    NeuroModelPredictOperator,
    NeuroUndeployOperator,
)
from airflow_neuro.sensors.neuro import NeuroJobStatusSensor

START = pendulum.datetime(2024, 1, 1, tz="UTC")

with DAG("deployment_deferred", schedule=None, start_date=START, catchup=False):
    train = NeuroRunOperator(
        task_id="train",
        job_command="sh -c 'for i in 1 2 3; do echo step $i; sleep 1; done; echo trained'",
        job_image="python:3.11",
        job_detach=False,
        deferrable=True,
        poll_interval=1,
    )
    serve = NeuroRunOperator(
        task_id="serve",
        job_command="sleep 3",
        job_image="ubuntu",
        deferrable=True,
        poll_interval=1,
    )
    NeuroJobStatusSensor(
        task_id="wait_served",
        job_id="{{ ti.xcom_pull(task_ids='serve')['id'] }}",
        deferrable=True,
        poke_interval=1,
        timeout=300,
    ).set_upstream(serve)
    train >> serve

# An endless deferred job, marked failed once its trigger runs, and (with a 10 s poll, the
# time its job has to be cancelled in) while no triggerer runs.
for dag_id, poll_interval in (("deployment_kill", 1), ("deployment_mark_unstarted", 10)):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        NeuroRunOperator(
            task_id="endless",
            job_command="sleep 600",
            job_image="ubuntu",
            job_detach=False,
            deferrable=True,
            poll_interval=poll_interval,
        )

# The example's server, which the suite puts in storage: jobs see storage, not the repository.
SERVER = "/srv/model_server.py"

with DAG("deployment_serving", schedule=None, start_date=START, catchup=False,
         params={"port": 18095}):  # fmt: skip
    deploy = NeuroDeployOperator(
        task_id="deploy",
        job_name="deferred-model",
        job_command=(
            f"sh -c 'python3 {SERVER} train --out model.json && exec python3 {SERVER} serve"
            " --model model.json --port {{ params.port }} --warmup 2'"
        ),
        job_image="python:3.11",
        job_volumes=["storage:deployment-serving:/srv:ro"],
        job_http_port="{{ params.port }}",
        health_path="/health",
        deferrable=True,
        poll_interval=0.5,
    )
    predict = NeuroModelPredictOperator(
        task_id="predict", endpoint="deferred-model", request_body={"x": [3]}
    )
    stop = NeuroUndeployOperator(task_id="stop", job_name="deferred-model")
    deploy >> predict >> stop.as_teardown(setups=deploy)

with DAG("deployment_cache", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="train",
        job_command="sh -c 'sleep 12; echo trained'",
        job_image="ubuntu",
        job_detach=False,
        cache=True,
        cache_key_extra="{{ dag_run.conf.get('nonce') }}",
        poll_interval=1,
    )
