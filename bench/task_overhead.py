"""Per-task overhead: the same short job through NeuroRunOperator, the CLI, and locally.

One DAG per route, each a chain of TASKS tasks, run with `airflow dags test` against the
local platform (a separate process). Wall time per task comes from the task instances'
start and end in the metadata DB; requests per task from the platform's request counter.

- `NeuroRunOperator` detached (returns once the job runs) and attached (waits for the end);
- a `BashOperator` running the official CLI, `apolo run --detach ... -- true`, from the
  `.venv-apolo` virtualenv (what a user would write instead);
- a `BashOperator` running `true` locally: the floor, Airflow's own cost of a task;
- `NeuroRunOperator(cache=True)` finding an earlier job's result (a cache hit).

    .venv/bin/python bench/task_overhead.py [--tasks 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from common import airflow_env, local_platform, machine_line, percentile, record  # noqa: E402

APOLO = REPO / ".venv-apolo" / "bin" / "apolo"
AIRFLOW = Path(sys.executable).with_name("airflow")

DAG_TEMPLATE = """
import os
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator
from airflow_neuro.operators.neuro import NeuroRunOperator

TASKS = int(os.environ["BENCH_TASKS"])
CLI = os.environ["BENCH_CLI"]
START = pendulum.datetime(2024, 1, 1, tz="UTC")

def chain(dag_id, make):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        previous = None
        for i in range(TASKS):
            task = make(f"t{i:03d}")
            if previous is not None:
                previous >> task
            previous = task

chain("bench_floor", lambda t: BashOperator(task_id=t, bash_command="true"))
chain("bench_neuro_detached", lambda t: NeuroRunOperator(
    task_id=t, job_command="true", job_image="ubuntu", job_resources_preset="cpu-small"))
chain("bench_neuro_attached", lambda t: NeuroRunOperator(
    task_id=t, job_command="true", job_image="ubuntu", job_resources_preset="cpu-small",
    job_detach=False))
chain("bench_cli", lambda t: BashOperator(task_id=t, bash_command=CLI))
cached = dict(job_command="true", job_image="ubuntu", job_resources_preset="cpu-small",
              cache=True)
with DAG("bench_cache_warm", schedule=None, start_date=START, catchup=False):
    NeuroRunOperator(task_id="warm", job_detach=False, **cached)
chain("bench_neuro_cached", lambda t: NeuroRunOperator(task_id=t, **cached))
"""

ROUTES = {
    "bench_floor": "BashOperator `true` (floor)",
    "bench_neuro_detached": "NeuroRunOperator, detached",
    "bench_neuro_attached": "NeuroRunOperator, attached (job_detach=False)",
    "bench_cli": "BashOperator `apolo run --detach`",
    # Every task finds the result of the job bench_cache_warm ran: no job is started.
    "bench_neuro_cached": "NeuroRunOperator, cache=True, a hit",
}


async def request_count(api_url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{api_url}/local/stats", headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        return int((await resp.json())["requests"])


def durations(dag_id: str) -> list[float]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.start_date, TaskInstance.end_date, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id
            )
        ).all()
    assert rows, f"no task instances of {dag_id}"
    assert all(str(state) == "success" for _, _, state in rows), rows
    return [(end - start).total_seconds() for start, end, _ in rows if start and end]


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name, local_platform(Path(tmp_name) / "p") as p:
        tmp = Path(tmp_name)
        # The CLI logs every command line, token included, under $HOME: give it its own.
        cli_home = tmp / "cli-home"
        cli_home.mkdir()
        cli = (f"HOME={cli_home} {APOLO} --config-path {tmp / 'cli-config'}"
               " --disable-pypi-version-check --skip-stats")  # fmt: skip
        subprocess.run(f"{cli} config login-with-token {p.token} {p.api_url}", shell=True,
                       check=True, capture_output=True)  # fmt: skip
        env = airflow_env(
            tmp,
            DAG_TEMPLATE,
            p,
            BENCH_TASKS=str(args.tasks),
            BENCH_CLI=f"{cli} -q run --detach --preset cpu-small ubuntu -- true",
        )
        os.environ.update(
            {k: env[k] for k in ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")}
        )
        warm = subprocess.run([str(AIRFLOW), "dags", "test", "bench_cache_warm"], env=env,
                              capture_output=True, text=True)  # fmt: skip
        assert warm.returncode == 0, warm.stdout[-3000:] + warm.stderr[-3000:]
        results = {}
        for dag_id in ROUTES:
            before = asyncio.run(request_count(p.api_url, p.token))
            done = subprocess.run([str(AIRFLOW), "dags", "test", dag_id], env=env,
                                  capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            after = asyncio.run(request_count(p.api_url, p.token))
            results[dag_id] = (durations(dag_id), (after - before) / args.tasks)
            print(f"{dag_id} done", file=sys.stderr)

    floor = statistics.median(results["bench_floor"][0])
    rows = [
        machine_line(f"python bench/task_overhead.py --tasks {args.tasks}"),
        "",
        f"{args.tasks} tasks per route, one `airflow dags test` run per route, job `true`"
        " on the local platform.",
        "",
        "| route | median per task | p95 per task | median / floor | requests per task |",
        "|---|---|---|---|---|",
    ]
    for dag_id, label in ROUTES.items():
        times, requests = results[dag_id]
        median = statistics.median(times)
        rows.append(
            f"| {label} | {median * 1000:.0f} ms | {percentile(times, 0.95) * 1000:.0f} ms"
            f" | {median / floor:.2f}x | {requests:.1f} |"
        )
    record("overhead", "\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=30)
    main(parser.parse_args())
