"""``airflow-neuro demo``: an example DAG end to end in real Airflow on the local platform.

Everything lives in a temporary directory (Airflow home, metadata DB, platform data) that
is removed afterwards, and the platform process is stopped whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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


def run_demo(dag_id: str, dags_folder: Path) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="airflow-neuro-demo-"))
    try:
        with spawned(workdir / "platform") as platform:
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
    code = _airflow("dags", "test", dag_id, env=env, log=log)
    states = re.findall(r"DagRun Finished: dag_id=\S+ .*?state=(\w+)", log.read_text())
    print(f"DAG run state: {states[-1] if states else 'unknown'}")
    config = workdir / "sdk"
    config.mkdir(mode=0o700)
    asyncio.run(_report(api_url, token, dag_id, config))
    if code != 0 or not states or states[-1] != "success":
        print(f"\nThe run did not succeed; Airflow's output:\n{log.read_text()}")
        return 1
    return 0
