"""The whole flow: prepare data on storage, train with the log in the task log, evaluate.

Each step is a platform job; they share data through a storage volume, pass values through
XCom and templates, and the last step reads the jobs' results.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.sensors.neuro import NeuroJobStatusSensor

DATA = "storage:airflow-demo/{{ run_id | replace(':', '-') | replace('+', '-') }}"

with DAG(
    dag_id="neuro_train_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"epochs": 3},
    tags=["neuro", "example"],
) as dag:
    prepare = NeuroRunOperator(
        task_id="prepare_data",
        job_command=(
            "sh -c 'seq 1 100 > /data/train.csv && echo prepared $(wc -l < /data/train.csv) rows'"
        ),
        job_image="ubuntu:22.04",
        job_volumes=[f"{DATA}:/data:rw"],
        job_tags=["example:pipeline"],
        job_detach=False,
    )

    # The log is UTF-8 (the dash below) and arrives in the task log line by line.
    train = NeuroRunOperator(
        task_id="train",
        job_command=(
            'sh -c \'for e in $(seq 1 $EPOCHS); do echo "epoch $e/$EPOCHS – loss 0.$((10 - e))"; '  # noqa: RUF001
            "sleep 0.2; done; cp /data/train.csv /data/model.txt; echo model saved'"
        ),
        job_image="python:3.11",
        job_resources_preset="cpu-medium",
        job_volumes=[f"{DATA}:/data:rw"],
        job_environ={"EPOCHS": "{{ params.epochs }}", "RUN_ID": "{{ run_id }}"},
        job_description="train on {{ ds }}",
        job_lifespan=3600,
        job_tags=["example:pipeline"],
        job_detach=False,
    )

    evaluate = NeuroRunOperator(
        task_id="evaluate",
        job_command="sh -c 'test -s /data/model.txt && echo accuracy 0.97'",
        job_image="python:3.11",
        job_volumes=[f"{DATA}:/data:ro"],
        job_tags=["example:pipeline"],
    )

    wait_evaluated = NeuroJobStatusSensor(
        task_id="wait_evaluated",
        job_id="{{ ti.xcom_pull(task_ids='evaluate')['id'] }}",
        job_statuses=["succeeded"],
        poke_interval=1,
        timeout=600,
    )

    @task
    def report(train_job: dict[str, Any], evaluate_job: dict[str, Any]) -> str:
        summary = (
            f"train {train_job['id']}: {train_job['status']} (exit {train_job['exit_code']}); "
            f"evaluate {evaluate_job['id']}: {evaluate_job['status']}"
        )
        print(summary)
        return summary

    prepare >> train >> evaluate >> wait_evaluated
    wait_evaluated >> report(train.output, evaluate.output)
