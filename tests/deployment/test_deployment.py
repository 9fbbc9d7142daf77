"""DAGs triggered through Airflow's REST API, deferred tasks completing in the triggerer."""

from __future__ import annotations

import time

import apolo_sdk

from ..conftest import free_port
from .conftest import Deployment

CANCELLED = apolo_sdk.JobStatus.CANCELLED


def test_deferred_run_and_sensor_through_the_real_triggerer(deployment: Deployment) -> None:
    run_id = deployment.trigger("deployment_deferred")
    assert deployment.wait_for_run("deployment_deferred", run_id) == "success", deployment.logs()
    assert deployment.task_states("deployment_deferred", run_id) == {
        "train": "success",
        "serve": "success",
        "wait_served": "success",
    }
    train_log = deployment.task_log("deployment_deferred", run_id, "train")
    for line in ("step 1", "step 2", "step 3", "trained"):
        assert line in train_log  # copied by the trigger into the task's log
    assert "Pausing task as DEFERRED" in train_log  # the worker slot was let go ...
    assert "Trigger fired event" in train_log  # ... and the triggerer did the waiting

    train = deployment.xcom("deployment_deferred", run_id, "train")
    assert train["status"] == "succeeded"
    assert train["exit_code"] == 0
    [job] = deployment.platform.jobs(f"airflow-run:{run_id}", "airflow-task:train")
    assert job.id == train["id"]
    serve = deployment.xcom("deployment_deferred", run_id, "serve")
    assert serve["status"] == "running"  # detached: resumed once the job had started


def test_marking_a_deferred_task_failed_cancels_its_job(deployment: Deployment) -> None:
    run_id = deployment.trigger("deployment_kill")
    deployment.wait_for_task("deployment_kill", run_id, "endless", {"deferred"})
    # Airflow calls a trigger's on_kill only once a triggerer runs it: wait for that.
    deployment.wait_for_trigger_start("deployment_kill", run_id, "endless")
    deployment.call(
        "PATCH",
        f"/dags/deployment_kill/dagRuns/{run_id}/taskInstances/endless",
        json={"new_state": "failed"},
    )
    deadline = time.monotonic() + 60
    while True:
        [job] = deployment.platform.jobs(f"airflow-run:{run_id}", "airflow-task:endless")
        if job.status == apolo_sdk.JobStatus.CANCELLED:
            break
        assert time.monotonic() < deadline, (job.status, deployment.logs())
        time.sleep(1)


def test_a_task_marked_failed_before_any_triggerer_runs_still_cancels_its_job(
    deployment: Deployment,
) -> None:
    dag_id = "deployment_mark_unstarted"
    with deployment.paused("triggerer"):  # nothing can run the task's trigger
        run_id = deployment.trigger(dag_id)
        deployment.wait_for_task(dag_id, run_id, "endless", {"deferred"})
        [job] = deployment.platform.jobs(f"airflow-run:{run_id}", "airflow-task:endless")
        assert job.status == apolo_sdk.JobStatus.RUNNING
        deployment.call(
            "PATCH",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/endless",
            json={"new_state": "failed"},
        )
        marked = time.monotonic()
        # Within one poll interval of the task (10 s), by the API server's listener.
        while deployment.platform.jobs(f"airflow-run:{run_id}")[0].status != CANCELLED:
            assert time.monotonic() - marked < 10, deployment.logs()
            time.sleep(0.2)
    assert deployment.task_states(dag_id, run_id) == {"endless": "failed"}
    assert not deployment.trigger_logs(dag_id, run_id, "endless")  # its trigger never ran


def test_a_deferred_deploy_waits_for_readiness_in_the_triggerer(deployment: Deployment) -> None:
    run_id = deployment.trigger("deployment_serving", conf={"port": free_port()})
    assert deployment.wait_for_run("deployment_serving", run_id) == "success", deployment.logs()
    deploy_log = deployment.task_log("deployment_serving", run_id, "deploy")
    assert "Pausing task as DEFERRED" in deploy_log
    assert "Trigger fired event" in deploy_log
    service = deployment.xcom("deployment_serving", run_id, "deploy")
    assert service["name"] == "deferred-model"
    # The server warms up for 2 s; the triggerer, which may start late, still counts from
    # the job's start.
    assert service["ready_after_s"] >= 2.0
    assert round(deployment.xcom("deployment_serving", run_id, "predict")["y"][0]) == 7
    [job] = deployment.platform.jobs(f"airflow-run:{run_id}", "airflow-task:deploy")
    assert job.id == service["id"]
    assert job.status == apolo_sdk.JobStatus.CANCELLED  # stopped by the teardown


def test_two_runs_started_together_share_one_cached_job(deployment: Deployment) -> None:
    nonce = {"nonce": str(time.time())}
    runs = [deployment.trigger("deployment_cache", conf=nonce) for _ in range(2)]
    for run_id in runs:
        assert deployment.wait_for_run("deployment_cache", run_id) == "success", deployment.logs()
    xcoms = [deployment.xcom("deployment_cache", run_id, "train") for run_id in runs]
    jobs = deployment.platform.jobs("airflow-dag:deployment_cache")
    assert [job.id for job in jobs] == [xcoms[0]["id"]] == [xcoms[1]["id"]]
    # The two tasks overlapped: neither found a finished result, one waited on the other's job.
    assert not any(xcom.get("cached") for xcom in xcoms)
    logs = [deployment.task_log("deployment_cache", run_id, "train") for run_id in runs]
    assert all("trained" in log for log in logs)
    assert sum(f"job {jobs[0].id} is making this result now" in log for log in logs) == 1
