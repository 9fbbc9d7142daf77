"""DAGs for the serving tests: a service that fails in each way, and redeploys."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_neuro.operators.serving import (
    NeuroDeployOperator,
    NeuroModelInfoOperator,
    NeuroModelPredictOperator,
    NeuroUndeployOperator,
)

START = pendulum.datetime(2024, 1, 1, tz="UTC")
# The example's server, which the tests put in storage (CODE): jobs see storage through
# their volumes, not the repository. It trains into the job's own directory, then serves.
CODE = "serving-scenarios"
CODE_VOLUME = f"storage:{CODE}:/srv:ro"
TRAIN_AND_SERVE = (
    "sh -c 'python3 /srv/model_server.py train --out model.json"
    " && exec python3 /srv/model_server.py serve --model model.json --port {{ params.port }}'"
)

with DAG("serving_failures", schedule=None, start_date=START, catchup=False,
         params={"port": 18090, "silent_port": 18092}):  # fmt: skip
    deploy = NeuroDeployOperator(
        task_id="deploy",
        job_name="teardown-model",
        job_command=TRAIN_AND_SERVE,
        job_volumes=[CODE_VOLUME],
        job_image="python:3.11",
        job_http_port="{{ params.port }}",
        health_path="/health",
        poll_interval=0.5,
    )
    bad_predict = NeuroModelPredictOperator(
        task_id="bad_predict", endpoint="teardown-model", request_body={"x": ["seven"]}
    )
    no_token = NeuroModelInfoOperator(task_id="no_token", endpoint="teardown-model", auth=False)
    stop = NeuroUndeployOperator(task_id="stop", job_name="teardown-model")
    deploy >> [bad_predict, no_token] >> stop.as_teardown(setups=deploy)

    NeuroDeployOperator(
        task_id="exits",
        job_name="exits-model",
        job_command="sh -c 'echo loading weights; echo weights.pt: no such file >&2; exit 3'",
        job_image="python:3.11",
        job_http_port="{{ params.silent_port }}",
        poll_interval=0.5,
    )
    NeuroDeployOperator(
        task_id="never_listens",
        job_name="silent-model",
        job_command="sleep 120",
        job_image="python:3.11",
        job_http_port="{{ params.silent_port }}",
        ready_timeout=3,
        poll_interval=0.5,
    )

with DAG("serving_redeploy", schedule=None, start_date=START, catchup=False,
         params={"port": 18091, "version": "1"}):  # fmt: skip
    NeuroDeployOperator(
        task_id="deploy",
        job_name="redeploy-model",
        job_command=TRAIN_AND_SERVE,
        job_volumes=[CODE_VOLUME],
        job_image="python:3.11",
        job_environ={"MODEL_VERSION": "{{ params.version }}"},
        job_http_port="{{ params.port }}",
        health_path="/health",
        poll_interval=0.5,
    )
