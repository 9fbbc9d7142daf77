"""Train a model, serve it, ask it for predictions, and stop it, on the platform.

The server (``model_server.py``, next to this file) goes to platform storage first, so the
jobs need nothing but a Python image. ``deploy_model`` succeeds once the server answers
``/health``, not merely once its job runs; ``stop_model`` is a teardown task, so the
service stops even when a prediction fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.operators.serving import (
    NeuroDeployOperator,
    NeuroModelInfoOperator,
    NeuroModelPredictOperator,
    NeuroUndeployOperator,
)

SERVER = Path(__file__).with_name("model_server.py")
# One directory per run: a retrained model is a changed job spec, so it is redeployed.
FOLDER = "airflow-demo/serving/{{ run_id | replace(':', '-') | replace('+', '-') }}"
SERVICE = "demo-model"


def close_to_line(answer: Any) -> bool:
    """The model learnt y = 2x + 1 from noisy points: predictions must be near it."""
    return all(abs(y - (2 * x + 1)) < 0.5 for x, y in zip([0, 1, 2], answer["y"], strict=True))


with DAG(
    dag_id="neuro_serve_model",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"port": 18080, "warmup": 1},
    tags=["neuro", "example", "serving"],
) as dag:

    @task
    def publish_server(folder: str) -> str:
        with NeuroHook() as hook:
            hook.write_text(f"{folder}/model_server.py", SERVER.read_text())
        return folder

    published = publish_server(FOLDER)

    train = NeuroRunOperator(
        task_id="train",
        job_command="python3 /srv/model_server.py train --out /srv/model.json",
        job_image="python:3.11",
        job_volumes=[f"storage:{FOLDER}:/srv:rw"],
        job_detach=False,
    )

    deploy = NeuroDeployOperator(
        task_id="deploy_model",
        job_name=SERVICE,
        job_command=(
            "python3 /srv/model_server.py serve --model /srv/model.json"
            " --port {{ params.port }} --warmup {{ params.warmup }}"
        ),
        job_image="python:3.11",
        job_volumes=[f"storage:{FOLDER}:/srv:ro"],
        job_http_port="{{ params.port }}",
        health_path="/health",
        ready_timeout=300,
        poll_interval=1,
    )

    info = NeuroModelInfoOperator(task_id="model_info", endpoint=SERVICE)

    predict = NeuroModelPredictOperator(
        task_id="predict",
        endpoint="{{ ti.xcom_pull(task_ids='deploy_model')['http_url'] }}",
        request_body={"x": [0, 1, 2]},
        response_check=close_to_line,
    )

    @task
    def predict_from_code(service: dict[str, Any]) -> list[float]:
        """The hook sends the same request, for code that decides what to ask."""
        with NeuroHook() as hook:
            answer = hook.request(service["name"], "/predict", method="POST", json={"x": [10]})
        if not answer.ok:
            raise RuntimeError(f"{answer.url} answered {answer.describe()}: {answer.head()}")
        prediction: list[float] = answer.value()["y"]
        return prediction

    stop = NeuroUndeployOperator(task_id="stop_model", job_name=SERVICE)

    published >> train >> deploy >> [info, predict]
    from_code = predict_from_code(deploy.output)
    [info, predict, from_code] >> stop.as_teardown(setups=deploy)
