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

from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.operators.neuro import NeuroRunOperator

from ..conftest import PlatformProcess


class _TaskInstance:
    """Only what resuming reads: the XCom the operator pushed before deferring."""

    def __init__(self, assigned: dict[str, Any]) -> None:
        self.assigned = assigned

    def xcom_pull(self, task_ids: str, key: str) -> dict[str, Any]:
        assert (task_ids, key) == ("slow", "assigned_job")
        return self.assigned


def test_timeout_while_deferred_cancels_the_job(platform_process: PlatformProcess) -> None:
    with NeuroHook() as hook:
        image = hook.client.parse.remote_image("ubuntu")
        job = hook.run(
            hook.client.jobs.start(image=image, preset_name="cpu-small", command="sleep 60")
        )
    operator = NeuroRunOperator(task_id="slow", job_command="sleep 60", job_image="ubuntu")
    context: Any = {"ti": _TaskInstance({"id": job.id})}
    with pytest.raises(TaskDeferralTimeout):
        operator.resume_execution("__fail__", {"error": "Trigger timeout"}, context)
    with NeuroHook() as hook:
        assert hook.run(hook.client.jobs.status(job.id)).status.value == "cancelled"
