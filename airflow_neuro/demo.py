"""``airflow-neuro demo``: an example DAG end to end in real Airflow on the local platform.

Everything lives in a temporary directory (Airflow home, metadata DB, platform data) that
is removed afterwards, and the platform process is stopped whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import apolo_sdk
from yarl import URL

from airflow_neuro.client.identity import PREFIX, tag_value
from airflow_neuro.localplatform.spawn import Served, spawned


def _airflow(*args: str, env: dict[str, str], log: Path) -> int:
    airflow = str(Path(sys.executable).with_name("airflow"))
    with open(log, "a") as out:
        return subprocess.run(
            [airflow, *args], env=env, stdout=out, stderr=subprocess.STDOUT
        ).returncode


def _task(job: apolo_sdk.JobDescription) -> str:
    return tag_value(job.tags, "task") or "-"


async def _report(api_url: str, token: str, dag_id: str, config: Path) -> None:
    await apolo_sdk.login_with_token(token, url=URL(api_url), path=config)
    client = await apolo_sdk.get(path=config)
    try:
        async with client.jobs.list(tags={f"{PREFIX}dag:{dag_id}"}) as found:
            jobs = [job async for job in found]
        print(f"\nJobs the DAG ran on the local platform ({api_url}):")
        for job in jobs:
            print(
                f"  {_task(job):<16} {job.id}  {job.status.value:<9} exit {job.history.exit_code}"
                f"  image {job.container.image}  `{job.container.command}`"
            )
        for job in jobs:
            async with client.jobs.monitor(job.id) as chunks:
                output = b"".join([chunk async for chunk in chunks]).decode(errors="replace")
            print(f"\n--- {_task(job)} ({job.id}) output ---\n{output.rstrip()}")
    finally:
        await client.close()


def run_demo(
    dag_id: str,
    dags_folder: Path,
    data_dir: Path | None = None,
    runtimes: Mapping[str, Path] | None = None,
) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="airflow-neuro-demo-"))
    try:
        platform_dir = data_dir.resolve() if data_dir else workdir / "platform"
        with spawned(platform_dir, runtimes=runtimes) as platform:
            return _run(dag_id, dags_folder, workdir, platform)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(dag_id: str, dags_folder: Path, workdir: Path, platform: Served) -> int:
    api_url, token = platform.api_url, platform.token
    log = workdir / "airflow.log"
    print(f"Local platform: {api_url}")
    home = workdir / "airflow"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder.resolve()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_NEURO_DEFAULT": json.dumps(
            {"conn_type": "neuro", "password": token, "extra": {"api_url": api_url}}
        ),
        "AIRFLOW_VAR_UBUNTU_TAG": "22.04",
        "AIRFLOW_VAR_PROJECT_HOME": "models/demo",
    }
    print("Preparing the Airflow metadata DB ...")
    if _airflow("db", "migrate", env=env, log=log) != 0:
        print(log.read_text(), file=sys.stderr)
        return 1
    print(f"Running `airflow dags test {dag_id}` ...")
    started = time.monotonic()
    code = _airflow("dags", "test", dag_id, env=env, log=log)
    took = time.monotonic() - started
    run = _facts(dag_id, env)
    print(f"DAG run state: {run.get('state', 'unknown')} ({took:.1f} s)")
    _print_steps(run)
    summary = _xcom(run, "report")
    if isinstance(summary, dict) and "trials" in summary:
        _print_lifecycle(run, summary)
    else:
        config = workdir / "sdk"
        config.mkdir(mode=0o700)
        asyncio.run(_report(api_url, token, dag_id, config))
    if code != 0 or run.get("state") != "success":
        print(f"\nThe run did not succeed; Airflow's output:\n{log.read_text()}")
        return 1
    return 0


def _facts(dag_id: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "airflow_neuro.demo_facts", dag_id],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        return {"tasks": []}
    facts: dict[str, Any] = json.loads(done.stdout)
    return facts


def _xcom(run: dict[str, Any], task_id: str) -> Any:
    return next((t["xcom"] for t in run["tasks"] if t["task_id"] == task_id), None)


def _print_steps(run: dict[str, Any]) -> None:
    print("\nSteps:")
    for task in run["tasks"]:
        name = task["task_id"] + (f"[{task['map_index']}]" if task["map_index"] >= 0 else "")
        seconds = f"{task['seconds']:6.1f} s" if task["seconds"] is not None else "      -"
        xcom = task["xcom"]
        cached = " (cached)" if isinstance(xcom, dict) and xcom.get("cached") else ""
        print(f"  {name:<16} {seconds}  {task['state']}{cached}")


def _print_lifecycle(run: dict[str, Any], summary: dict[str, Any]) -> None:
    trained = [t["xcom"] for t in run["tasks"] if t["task_id"] == "train"]
    fresh = sum(1 for x in trained if isinstance(x, dict) and not x.get("cached"))
    print(f"\nSweep ({len(summary['trials'])} trials, {fresh} trained in this run):")
    print(f"  {'trial':<12} {'parameters':<32} cv acc.  held-out acc.")
    for trial in summary["trials"]:
        mark = "*" if trial["trial"] == summary["best"] else " "
        params = " ".join(f"{k}={v}" for k, v in trial["params"].items())
        print(f"{mark} {trial['trial']:<12} {params:<32} {trial['cv_accuracy']:.4f}   "
              f"{trial['test_accuracy']:.4f}")  # fmt: skip
    print(f"\nChosen model: {summary['best']}")
    print(f"Served at:    {summary['service']}")
    print(f"Predicted:    {summary['predicted']}")
    print(f"Expected:     {summary['expected']}  ({summary['right']} right)")
