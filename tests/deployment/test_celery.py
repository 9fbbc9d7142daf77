"""The CeleryExecutor: deferred tasks shared by two workers and the triggerer, and a worker
lost mid-job."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import apolo_sdk

from .conftest import Deployment
from .dags.deployment_celery import COUNTED_LINES, DEFERRED_TASKS

JOB_LINE = re.compile(r"^line (\d+)$")


def events(log: str) -> list[str]:
    """A task log's lines (the job's among them), in the order they were written."""
    return [str(entry.get("event", "")) for entry in json.loads(log) if isinstance(entry, dict)]


def job_lines(log: str) -> list[int]:
    """The numbers of the counting job's lines in a task log."""
    return [int(match[1]) for event in events(log) if (match := JOB_LINE.match(event))]


def test_deferred_tasks_share_both_workers_and_the_triggerer(
    celery_deployment: Deployment,
) -> None:
    deployment = celery_deployment
    dag_id = "celery_deferred_many"
    run_id = deployment.trigger(dag_id)
    assert deployment.wait_for_run(dag_id, run_id, timeout=600) == "success", deployment.logs()
    tasks = {f"job_{n:02d}": n for n in range(DEFERRED_TASKS)}
    instances = deployment.task_instances(dag_id, run_id)
    assert {ti["task_id"]: ti["state"] for ti in instances} == dict.fromkeys(tasks, "success")
    # Resumed by whichever worker was free: both took part.
    ran_on = Counter(ti["hostname"] for ti in instances)
    assert set(ran_on) == set(deployment.workers), ran_on

    jobs = deployment.platform.jobs(f"airflow-run:{run_id}")
    per_task = Counter(tag for job in jobs for tag in job.tags if tag.startswith("airflow-task:"))
    assert per_task == Counter({f"airflow-task:{task}": 1 for task in tasks})
    # A detached task succeeds once its job runs: the last jobs may not have ended yet.
    deadline = time.monotonic() + 60
    while any(job.status in (apolo_sdk.JobStatus.PENDING, apolo_sdk.JobStatus.RUNNING)
              for job in jobs):  # fmt: skip
        assert time.monotonic() < deadline, [(job.id, job.status) for job in jobs]
        time.sleep(1)
        jobs = deployment.platform.jobs(f"airflow-run:{run_id}")
    assert {(job.status, job.history.exit_code) for job in jobs} == {
        (apolo_sdk.JobStatus.SUCCEEDED, 0)
    }

    for task, n in tasks.items():
        log = deployment.task_log(dag_id, run_id, task)
        assert "Pausing task as DEFERRED" in log, (task, log)  # the worker let go ...
        assert "Trigger fired event" in log, (task, log)  # ... and the triggerer waited
        if n % 2 == 0:  # streamed by the trigger
            assert f"task {n}" in events(log), (task, log)


def test_a_lost_worker_s_task_is_retried_on_the_other_and_reattaches_to_its_job(
    celery_deployment: Deployment,
) -> None:
    deployment = celery_deployment
    dag_id, task = "celery_lost_worker", "count"
    run_id = deployment.trigger(dag_id)
    lost = deployment.worker_running(dag_id, run_id, task)
    [survivor] = set(deployment.workers) - {lost}
    deployment.wait_for_worker_log(dag_id, run_id, task, 1, "line 3")
    # The worker, its pool, the task's supervisor and process: gone at once, as with a
    # lost node. The job runs on in the platform.
    deployment.kill_worker(lost)
    try:
        assert deployment.wait_for_run(dag_id, run_id) == "success", deployment.logs()
        tries = deployment.task_tries(dag_id, run_id, task)
        assert [(ti["try_number"], ti["hostname"]) for ti in tries] == [(1, lost), (2, survivor)]
        assert tries[-1]["state"] == "success"
        [job] = deployment.platform.jobs(f"airflow-run:{run_id}", f"airflow-task:{task}")
        assert job.status == apolo_sdk.JobStatus.SUCCEEDED
        assert job.history.exit_code == 0
        retried = deployment.task_log(dag_id, run_id, task, try_number=2)
        assert f"Reattaching to live job {job.id}" in retried, retried
        # Streamed again from the start: every line once, in order, none lost to the kill.
        assert job_lines(retried) == list(range(1, COUNTED_LINES + 1)), retried
    finally:
        # A new node in the lost one's place: the deployment has two workers again.
        deployment.start_worker(lost)
        deployment.wait_for_workers()
