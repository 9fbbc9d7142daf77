"""A deferred wait that times out cancels the job before the task fails.

`airflow dags test` runs triggers to completion and never times a deferral out, so the
resume Airflow performs after a timeout is driven here directly, with a real job.
"""

from __future__ import annotations

from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import TaskDeferralTimeout
except ImportError:  # Airflow 3.1
    from airflow.exceptions import TaskDeferralTimeout  # type: ignore[no-redef]

from airflow_neuro.client import TaskIdentity
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.operators.neuro import NeuroRunOperator

from ..conftest import PlatformProcess


class _TaskInstance:
    """Only what resuming reads: who the task is, and the XCom it pushed before deferring."""

    dag_id, task_id, run_id, map_index, try_number = "d", "slow", "r", -1, 1

    def __init__(self, assigned: dict[str, Any]) -> None:
        self.assigned = assigned

    def xcom_pull(self, task_ids: str, key: str) -> dict[str, Any]:
        assert (task_ids, key) == ("slow", "assigned_job")
        return self.assigned


def start_sleeping(tags: list[str]) -> str:
    with NeuroHook() as hook:
        image = hook.client.parse.remote_image("ubuntu")
        job = hook.run(
            hook.client.jobs.start(
                image=image, preset_name="cpu-small", command="sleep 60", tags=tags
            )
        )
    return job.id


def status(job_id: str) -> str:
    with NeuroHook() as hook:
        return hook.run(hook.client.jobs.status(job_id)).status.value


def test_timeout_while_deferred_cancels_the_job(platform_process: PlatformProcess) -> None:
    ours = start_sleeping(TaskIdentity.of(_TaskInstance({})).tags)
    # Waited on through the cache, started by another DAG run: not this task's to cancel.
    theirs = start_sleeping(TaskIdentity("d", "slow", "other-run", -1, 1).tags)
    for job_id in (ours, theirs):
        operator = NeuroRunOperator(task_id="slow", job_command="sleep 60", job_image="ubuntu")
        context: Any = {"ti": _TaskInstance({"id": job_id})}
        with pytest.raises(TaskDeferralTimeout):
            operator.resume_execution("__fail__", {"error": "Trigger timeout"}, context)
    assert status(ours) == "cancelled"
    assert status(theirs) in ("pending", "running")
    with NeuroHook() as hook:
        hook.cancel_job(theirs)
