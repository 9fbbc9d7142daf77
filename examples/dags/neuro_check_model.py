"""Branch on whether a model exists on platform storage, using NeuroHook directly.

Variable: ``project_home``, a storage path such as ``models/demo``.
"""

from __future__ import annotations

from typing import Any

import pendulum
import yarl
from airflow.providers.standard.operators.python import BranchPythonOperator
from airflow.sdk import DAG
from apolo_sdk import ResourceNotFound

from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.operators.neuro import NeuroRunOperator


def check_model(templates_dict: dict[str, Any], **_: Any) -> str:
    model = yarl.URL("storage:" + templates_dict["model_path"])
    hook = NeuroHook()
    with hook:
        try:
            # run_retrying, unlike run, asks again through transient platform faults.
            hook.run_retrying(lambda: hook.client.storage.stat(model), "stat of the model")
            return "process_with_model"
        except ResourceNotFound:
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
