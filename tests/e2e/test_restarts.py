"""Killed workers, stopped tasks and a platform that is gone, with real processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import apolo_sdk
import pytest

from airflow_neuro.localplatform.spawn import serving

from ..conftest import PlatformProcess, free_port
from .conftest import AIRFLOW, SCENARIOS, airflow_env, latest_run


def start_dag(
    dag_id: str, output: Path, platform: PlatformProcess | None = None
) -> subprocess.Popen[bytes]:
    with open(output, "wb") as out:
        return subprocess.Popen(
            [AIRFLOW, "dags", "test", dag_id], env=airflow_env(SCENARIOS, platform),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def wait_for_text(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} never appeared:\n{path.read_text()}"
        time.sleep(0.2)


def jobs_of_run(platform: PlatformProcess, dag_id: str, run_id: str) -> list[Any]:
    return platform.jobs(f"airflow-dag:{dag_id}", f"airflow-run:{run_id}")


def test_killed_worker_then_rerun_leaves_one_job(
    dags_test: Any, platform_process: PlatformProcess, tmp_path: Path
) -> None:
    first = tmp_path / "first.log"
    process = start_dag("scenario_restart", first)
    wait_for_text(first, "begin")  # the job runs and its log is streaming
    os.killpg(process.pid, signal.SIGKILL)  # the worker dies without any clean-up
    process.wait()
    run_id, _ = latest_run("scenario_restart")
    [job] = jobs_of_run(platform_process, "scenario_restart", run_id)
    assert job.status == apolo_sdk.JobStatus.RUNNING  # left behind, as after a crash

    again = subprocess.run(
        [AIRFLOW, "tasks", "test", "scenario_restart", "long", run_id],
        env=airflow_env(SCENARIOS), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert f"Reattaching to live job {job.id}" in output
    assert "begin" in output
    assert "end" in output  # the whole log, streamed again after the restart
    [same] = jobs_of_run(platform_process, "scenario_restart", run_id)
    assert same.id == job.id
    assert same.status == apolo_sdk.JobStatus.SUCCEEDED


def test_sigterm_cancels_the_job_within_seconds(
    dags_test: Any, platform_process: PlatformProcess, tmp_path: Path
) -> None:
    log = tmp_path / "run.log"
    process = start_dag("scenario_restart", log)
    wait_for_text(log, "begin")
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    run_id, states = latest_run("scenario_restart")
    assert states == {"long": "failed"}
    [job] = jobs_of_run(platform_process, "scenario_restart", run_id)
    assert job.status == apolo_sdk.JobStatus.CANCELLED
    assert job.history.finished_at is not None
    assert time.monotonic() - stopped < 15
    assert "Cancelled job" in log.read_text()


def test_platform_down_fails_in_bounded_time(
    dags_test: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_NEURO_DOWN",
        '{"conn_type": "neuro", "password": "t", "extra": {"api_url": "http://127.0.0.1:9/api/v1"}}',
    )
    started = time.monotonic()
    result = dags_test("scenario_platform_down", SCENARIOS)
    assert result.states == {"unreachable": "failed"}
    assert "the platform did not answer login for" in "\n".join(
        result.task_log_lines("unreachable")
    )
    assert time.monotonic() - started < 60  # retry_budget=5 on the task


def test_finished_jobs_are_reused_only_when_asked(
    dags_test: Any, platform_process: PlatformProcess
) -> None:
    first = dags_test("scenario_reuse", SCENARIOS)
    assert set(first.states.values()) == {"success"}, first.output
    for task_id in ("reused", "not_reused"):  # a rerun of the same task instance
        again = subprocess.run(
            [AIRFLOW, "tasks", "test", "scenario_reuse", task_id, first.run_id],
            env=airflow_env(SCENARIOS), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
    reused = jobs_of_run(platform_process, "scenario_reuse", first.run_id)
    by_task: dict[str, int] = {}
    for job in reused:
        task = next(t for t in job.tags if t.startswith("airflow-task:"))
        by_task[task] = by_task.get(task, 0) + 1
    assert by_task == {"airflow-task:reused": 1, "airflow-task:not_reused": 2}


@pytest.mark.once  # the local platform's restart; the provider's side is test_faults'
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_platform_stopped_mid_job_picks_it_up_again_and_the_work_runs_once(
    airflow_db: None, tmp_path: Path, signum: int
) -> None:
    data_dir, port = tmp_path / "platform", free_port()
    log = tmp_path / "run.log"
    with serving(data_dir, port=port, end_jobs=False) as (served, first):
        platform = PlatformProcess(served.api_url, served.token, data_dir)
        dag = start_dag("scenario_platform_restart", log, platform)
        wait_for_text(log, "restart-begin")  # the job runs and the task follows its log
        # kill -9: no clean-up of any kind; SIGTERM: a stop that leaves the jobs running.
        first.send_signal(signum)
        first.wait(30)
    time.sleep(2)  # the task's requests fail meanwhile, within its retry budget
    with serving(data_dir, port=port) as (again, _):
        assert again.token == served.token  # the data dir keeps it
        try:
            assert dag.wait(120) == 0, log.read_text()
        finally:
            if dag.poll() is None:
                os.killpg(dag.pid, signal.SIGKILL)
        run_id, states = latest_run("scenario_platform_restart")
        assert states == {"through_restart": "success"}, log.read_text()
        [job] = jobs_of_run(platform, "scenario_platform_restart", run_id)
        assert job.status == apolo_sdk.JobStatus.SUCCEEDED
        assert job.history.exit_code == 0
    runs = data_dir / "storage" / "local" / "default" / "platform-restart" / "runs"
    assert runs.read_text() == "ran\n"  # one job, started once
    lines = log.read_text().splitlines()
    # The whole log, the part written after the restart too, and nothing twice.
    job_lines = [m.group(1) for line in lines if (m := re.search(r"\] (restart-\w+)", line))]
    assert job_lines == ["restart-begin", "restart-end"], lines
