"""DAGs for the end-to-end tests: failures, bad input, timeouts and links."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.sensors.neuro import NeuroJobStatusSensor

START = pendulum.datetime(2024, 1, 1, tz="UTC")

with DAG("scenario_exit_codes", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="fails_on_errno",
        job_command="sh -c 'echo about to fail; exit 3'",
        job_image="ubuntu",
        job_detach=False,
    )
    NeuroRunOperator(
        task_id="records_errno",
        job_command="sh -c 'exit 3'",
        job_image="ubuntu",
        job_detach=False,
        raise_on_errno=False,
    )
    NeuroRunOperator(
        task_id="never_ran",
        job_command="no-such-program --train",
        job_image="ubuntu",
        job_detach=False,
        raise_on_errno=False,
    )
    NeuroRunOperator(
        task_id="life_span_ends",
        job_command="sleep 60",
        job_image="ubuntu",
        job_lifespan=60,  # the test platform makes this minute a second
        job_detach=False,
    )

with DAG("scenario_bad_input", schedule=None, start_date=START, catchup=False):
    bad = {
        "bad_volume": {"job_volumes": ["storage:data"]},
        "bad_volume_mode": {"job_volumes": ["storage:data:/data:rx"]},
        "bad_port": {"job_http_port": "eighty"},
        "bad_env": {"job_environ": {"EPOCHS": 3}},
        "bad_tag": {"job_tags": ["has space"]},
        "bad_name": {"job_name": "Not_A_Name"},
        "unknown_preset": {"job_resources_preset": "gpu-galaxy"},
        "tags_as_string": {"job_tags": "abc"},
        "volumes_as_string": {"job_volumes": "storage:data:/data"},
        "volume_above_project": {"job_volumes": ["storage:../../..:/mnt"]},
        "volume_empty_path": {"job_volumes": ["storage::/x"]},
        "env_as_pairs": {"job_environ": [("A", "1")]},
    }
    for task_id, kwargs in bad.items():
        NeuroRunOperator(
            task_id=task_id,
            job_command="true",
            job_image="ubuntu",
            **kwargs,  # type: ignore[arg-type]
        )

with DAG("scenario_attached", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="attached",
        # "Ж" arrives as two bytes 0.3 s apart; the task log must show it whole.
        job_command=(
            "sh -c \"printf 'split \\320'; sleep 0.3; printf '\\226 char\\n'; echo $GREETING\""
        ),
        job_image="ubuntu:{{ var.value.get('ubuntu_tag', 'latest') }}",
        job_environ={"GREETING": "hello from {{ dag.dag_id }}"},
        job_tags=["purpose:e2e"],
        job_description="{{ task.task_id }} in {{ dag.dag_id }}",
        job_detach=False,
    )
    NeuroRunOperator(
        task_id="served",
        job_command="sleep 30",
        job_image="ubuntu",
        job_http_port="8080",
        job_lifespan=120,
    )

with DAG("scenario_timeout", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="too_slow",
        job_command="sleep 60",
        job_image="ubuntu",
        job_detach=False,
        execution_timeout=timedelta(seconds=3),
    )

with DAG("scenario_sensor_mismatch", schedule=None, start_date=START, catchup=False):
    failing = NeuroRunOperator(
        task_id="failing",
        job_command="false",
        job_image="ubuntu",
        raise_on_errno=False,
        job_detach=False,
    )
    wait = NeuroJobStatusSensor(
        task_id="wait_success",
        job_id="{{ ti.xcom_pull(task_ids='failing')['id'] }}",
        job_statuses=["succeeded"],
        poke_interval=1,
        timeout=60,
    )
    failing >> wait

with DAG("scenario_reschedule", schedule=None, start_date=START, catchup=False):
    slow = NeuroRunOperator(task_id="slow", job_command="sleep 4", job_image="ubuntu")
    NeuroJobStatusSensor(
        task_id="wait_rescheduled",
        job_id="{{ ti.xcom_pull(task_ids='slow')['id'] }}",
        mode="reschedule",
        poke_interval=1,
        timeout=120,
    ).set_upstream(slow)

with DAG("scenario_deferred", schedule=None, start_date=START, catchup=False):
    deferred_run = NeuroRunOperator(
        task_id="deferred_run",
        job_command="sh -c 'echo deferred one; sleep 1; printf \"deferred \\320\\226 two\\n\"'",
        job_image="ubuntu",
        job_detach=False,
        deferrable=True,
        poll_interval=1,
    )
    deferred_failure = NeuroRunOperator(
        task_id="deferred_failure",
        job_command="sh -c 'sleep 1; exit 5'",
        job_image="ubuntu",
        deferrable=True,
        job_detach=False,
        poll_interval=1,
    )
    NeuroJobStatusSensor(
        task_id="deferred_sensor",
        job_id="{{ ti.xcom_pull(task_ids='deferred_run')['id'] }}",
        deferrable=True,
        poke_interval=1,
        timeout=120,
    ).set_upstream(deferred_run)

with DAG("scenario_platform_down", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="unreachable",
        job_command="true",
        job_image="ubuntu",
        neuro_conn_id="neuro_down",
        retry_budget=5,
    )

with DAG("scenario_restart", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="long",
        # Long enough for a rerun's start-up (several seconds on a busy machine) to find it live.
        job_command="sh -c 'echo begin; sleep 12; echo end'",
        job_image="ubuntu",
        job_detach=False,
        poll_interval=1,
    )

with DAG("scenario_platform_restart", schedule=None, start_date=START, catchup=False):
    # Each start of the job leaves a line in storage: the test counts how often it ran.
    NeuroRunOperator(
        task_id="through_restart",
        job_command="sh -c 'echo ran >> /data/runs; echo restart-begin; sleep 8; echo restart-end'",
        job_image="ubuntu",
        job_volumes=["storage:platform-restart:/data:rw"],
        job_detach=False,
        poll_interval=1,
    )

with DAG("scenario_sensor_timeout", schedule=None, start_date=START, catchup=False):
    slow_job = NeuroRunOperator(task_id="slow_job", job_command="sleep 60", job_image="ubuntu")
    NeuroJobStatusSensor(
        task_id="impatient",
        job_id="{{ ti.xcom_pull(task_ids='slow_job')['id'] }}",
        poke_interval=1,
        timeout=3,
    ).set_upstream(slow_job)

with DAG("scenario_reuse", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(
        task_id="reused",
        job_command="echo computed once",
        job_image="ubuntu",
        job_detach=False,
        reuse_finished_job=True,
    )
    NeuroRunOperator(
        task_id="not_reused",
        job_command="echo computed each time",
        job_image="ubuntu",
        job_detach=False,
    )
