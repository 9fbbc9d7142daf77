"""Run a job with a templated image and preset, then wait on it with a sensor.

Variables: ``ubuntu_tag`` (e.g. ``22.04``) and, optionally, ``use_large_cpu``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.sensors.neuro import NeuroJobStatusSensor

with DAG(
    dag_id="neuro_small_deeds",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["neuro", "example"],
) as dag:
    run = NeuroRunOperator(
        task_id="small-deeds",
        job_command="echo 'Big things start from small deeds'",
        job_image="ubuntu:{{ var.value.ubuntu_tag }}",
        job_resources_preset=(
            "{% if var.value.get('use_large_cpu', '') %}cpu-large{% else %}cpu-small{% endif %}"
        ),
    )

    wait = NeuroJobStatusSensor(
        task_id="wait_close",
        job_id="{{ task_instance.xcom_pull(task_ids='small-deeds')['id'] }}",
        poke_interval=1,
        timeout=10 * 60,
    )

    run >> wait
