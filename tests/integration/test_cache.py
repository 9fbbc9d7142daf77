"""The cache's fallback: a job another run started, that ends without a result, is not
this task's result; it runs the job itself."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from airflow_neuro.client import TaskIdentity
from airflow_neuro.client.cache import cache_job_name, cache_key, cache_tag
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.operators.neuro import NeuroRunOperator

from ..conftest import PlatformProcess


class _TaskInstance:
    dag_id, task_id, run_id, map_index, try_number = "d", "train", "this-run", -1, 1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def test_a_cached_job_that_is_cancelled_under_the_task_is_run_again_by_it(
    platform_process: PlatformProcess,
) -> None:
    operator = NeuroRunOperator(
        task_id="train", job_command="sleep 2", job_image="ubuntu", job_detach=False,
        cache=True, poll_interval=0.2,
    )  # fmt: skip
    request = operator.job_request()
    with NeuroHook() as hook:
        config = hook.client.config
        key = cache_key(
            request, where=f"{config.cluster_name}/{config.org_name}/{config.project_name}"
        )
        # Another DAG run's job for the same work, cancelled while this task waits on it.
        other = hook.submit_job(
            dataclasses.replace(request, job_tags=[cache_tag(key)], job_name=cache_job_name(key)),
            TaskIdentity("d", "train", "other-run", -1, 1),
        )

    def cancel_other() -> None:
        with NeuroHook() as hook:
            hook.cancel_job(other.id)

    threading.Timer(1.0, cancel_other).start()
    context: Any = {"ti": _TaskInstance()}
    result = operator.execute(context)
    assert result["status"] == "succeeded"
    assert result["id"] != other.id
    with NeuroHook() as hook:
        assert hook.get_job(other.id).status.value == "cancelled"
        assert cache_tag(key) in hook.get_job(result["id"]).tags
