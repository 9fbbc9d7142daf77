"""Cancel the job of a deferred task that a person ends (marked failed or success).

A deferred task's job is cancelled by its trigger's ``on_kill``, but only once a triggerer
runs that trigger: a task marked failed before then (the triggerer busy, down, or not
started yet) has its trigger deleted unrun, and its job would run on with nobody waiting
for it. Airflow's API server calls these hooks when a person sets a task instance's (or a
whole DAG run's) state, while the task instance still names its trigger, whose arguments
say which job it waits on and whether the task started it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

# Each trigger that waits on a job, and its argument that says the job is the task's to
# cancel (set only when some try of the task started it).
CANCELLING_TRIGGERS = {
    "airflow_neuro.triggers.neuro.NeuroJobTrigger": "cancel_on_kill",
    "airflow_neuro.triggers.serving.NeuroServiceTrigger": "cancel_on_failure",
}
# A cancel runs beside the request that set the state: it must not hold the API up.
CANCEL_TIMEOUT = 90.0


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    cancel_deferred_job(task_instance)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    cancel_deferred_job(task_instance)


def cancel_deferred_job(task_instance: Any) -> threading.Thread | None:
    """Start cancelling the job the task instance's trigger waits on, if the task owns it.

    Workers call these hooks too, for tasks that ran there: those have no trigger, and a
    task that ends on a worker cancels its own job (``on_kill``).
    """
    if getattr(task_instance, "trigger_id", None) is None:
        return None
    found = _job_of_trigger(task_instance)
    if found is None:
        return None
    conn_id, job_id = found
    worker = threading.Thread(
        target=_cancel, args=(conn_id, job_id), name=f"neuro-cancel-{job_id}", daemon=True
    )
    worker.start()
    return worker


def _job_of_trigger(task_instance: Any) -> tuple[str, str] | None:
    """(connection id, job id) when the task's trigger waits on a job the task started."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        trigger = session.get(Trigger, task_instance.trigger_id)
        if trigger is None:  # already cleaned up: a triggerer ran it and called on_kill
            return None
        classpath, kwargs = trigger.classpath, dict(trigger.kwargs)
    flag = CANCELLING_TRIGGERS.get(classpath)
    if flag is None or not kwargs.get(flag):
        return None
    return str(kwargs.get("neuro_conn_id", "neuro_default")), str(kwargs["job_id"])


def _cancel(conn_id: str, job_id: str) -> None:
    # Imported here: the plugin is loaded by every Airflow process, the SDK only by this.
    from airflow.models.connection import Connection

    from airflow_neuro.client import NeuroConnectionParams, cancel_job

    try:
        params = NeuroConnectionParams.from_connection(
            Connection.get_connection_from_secrets(conn_id)
        )
        asyncio.run(asyncio.wait_for(cancel_job(params, job_id), CANCEL_TIMEOUT))
    except Exception as e:  # nobody else will see it: the log is the only place
        log.error("Could not cancel job %s of a task marked done: %s", job_id, e)
    else:
        log.info("Cancelled job %s: its deferred task was marked done", job_id)
