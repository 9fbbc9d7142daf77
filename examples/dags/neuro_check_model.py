"""Branch on whether a model exists on platform storage, using NeuroHook directly.

Variable: ``project_home``, a storage path such as ``models/demo``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.operators.python import BranchPythonOperator
from airflow.sdk import DAG

from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.operators.neuro import NeuroRunOperator


def check_model(templates_dict: dict[str, Any], **_: Any) -> str:
    with NeuroHook() as hook:
        # The hook's methods ask again through transient platform faults.
        if hook.exists(templates_dict["model_path"]):
            return "process_with_model"
        return "process_without_model"


with DAG(
    dag_id="neuro_check_model",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["neuro", "example"],
) as dag:
    check = BranchPythonOperator(
        task_id="check_model_exists",
        python_callable=check_model,
        templates_dict={"model_path": "{{ var.value.project_home }}/model.pth"},
    )
    with_model = NeuroRunOperator(
        task_id="process_with_model",
        job_command="sh -c 'echo using $(cat /models/model.pth)'",
        job_image="ubuntu:22.04",
        job_volumes=["storage:{{ var.value.project_home }}:/models:ro"],
        job_detach=False,
    )
    without_model = NeuroRunOperator(
        task_id="process_without_model",
        job_command="echo no model yet",
        job_image="ubuntu:22.04",
        job_detach=False,
    )
    check >> [with_model, without_model]
