"""The job cache end to end in real Airflow: what hits, what splits the key, what expires."""

from __future__ import annotations

from typing import Any

import apolo_sdk

from ..conftest import PlatformProcess
from .conftest import SCENARIOS, DagRunResult

TASKS = ("same", "command", "env", "extra", "inputs", "outputs", "ttl", "failing")


def cached(result: DagRunResult) -> dict[str, bool]:
    """Which tasks took a cached result (a failed task has no XCom)."""
    return {
        task: bool((result.xcom(task) or {}).get("cached")) for task in TASKS if task != "failing"
    }


def jobs_of(platform: PlatformProcess, dag_id: str, task_id: str) -> list[apolo_sdk.JobDescription]:
    return platform.jobs(f"airflow-dag:{dag_id}", f"airflow-task:{task_id}")


def test_the_cache_reuses_results_and_splits_on_what_changes(
    dags_test: Any, platform_process: PlatformProcess
) -> None:
    storage = platform_process.data_dir / "storage/local/default/cache-e2e"
    (storage / "in").mkdir(parents=True)
    (storage / "in" / "data.csv").write_text("1,2\n")

    params = {"word": "a", "value": "1", "extra": "x"}
    first = dags_test("scenario_cache", SCENARIOS, conf=params)
    assert first.states == {**dict.fromkeys(TASKS, "success"), "failing": "failed"}, first.output
    assert not any(cached(first).values())

    again = dags_test("scenario_cache", SCENARIOS, conf=params)
    assert again.states == first.states, again.output
    # The TTL (2 s) ran out between the runs; everything else is the first run's result.
    assert cached(again) == {**dict.fromkeys(TASKS[:-2], True), "ttl": False}
    same = again.xcom("same")
    [job] = jobs_of(platform_process, "scenario_cache", "same")
    assert same == {
        "id": job.id, "status": "succeeded", "exit_code": 0, "http_url": None,
        "cached": True, "cached_from": job.id,
    }  # fmt: skip
    log = "\n".join(again.task_log_lines("same"))
    assert f"job {job.id} succeeded at" in log
    assert "no new job" in log
    # A failed job is never a result: each run ran its own.
    assert len(jobs_of(platform_process, "scenario_cache", "failing")) == 2
    # The run id is in the environment but left out of the key.
    assert len(jobs_of(platform_process, "scenario_cache", "env")) == 1

    # A changed command, env value, extra key and input file; a deleted output.
    (storage / "in" / "data.csv").write_text("1,2\n3,4\n")
    (storage / "out" / "result").unlink()
    changed = dags_test("scenario_cache", SCENARIOS, conf={"word": "b", "value": "2", "extra": "y"})
    assert cached(changed) == {**dict.fromkeys(TASKS[:-2], False), "same": True, "ttl": False}
    assert "its output cache-e2e/out/result is gone" in "\n".join(changed.task_log_lines("outputs"))
    for task in ("command", "env", "extra", "inputs", "outputs"):
        assert len(jobs_of(platform_process, "scenario_cache", task)) == 2, task

    # "refresh" runs anyway and becomes the entry the next run reuses.
    refresh = dags_test("scenario_cache_refresh", SCENARIOS)
    assert refresh.states == {"refresh": "success"}, refresh.output
    fresh = refresh.xcom("refresh")
    assert "cached" not in fresh
    reuse = dags_test("scenario_cache", SCENARIOS, conf=params)
    assert reuse.xcom("same")["cached_from"] == fresh["id"] != job.id
