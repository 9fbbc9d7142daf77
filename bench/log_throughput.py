"""Log throughput: a job's output into the task log with job_detach=False.

A job prints SIZE MB of lines; the task streams them into its log, in one
`airflow dags test` run against the local platform. The floor is a BashOperator that
`cat`s the same lines locally, which Airflow also writes to the task log line by line.
Peak RSS is the whole `airflow dags test` process's (the task runs in it).

    .venv/bin/python bench/log_throughput.py [--megabytes 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import airflow_env, local_platform, machine_line, record  # noqa: E402

AIRFLOW = Path(sys.executable).with_name("airflow")
LINE = "epoch 001 step 000123 loss 0.123456 accuracy 0.987654 lr 0.000100 "  # 70 bytes

DAG_TEMPLATE = """
import os
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator
from airflow_neuro.operators.neuro import NeuroRunOperator

FILE = os.environ["BENCH_FILE"]
START = pendulum.datetime(2024, 1, 1, tz="UTC")

with DAG("bench_log_floor", schedule=None, start_date=START, catchup=False):
    BashOperator(task_id="cat", bash_command=f"cat {FILE}")

with DAG("bench_log_neuro", schedule=None, start_date=START, catchup=False):
    # The same file, which the job sees through a storage volume.
    NeuroRunOperator(task_id="stream", job_command="cat /bench/lines.txt", job_image="ubuntu",
                     job_volumes=["storage:bench:/bench:ro"], job_detach=False)
"""


def run(dag_id: str, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of the task and peak RSS (bytes) of its `airflow dags test` process."""
    started = time.monotonic()
    child = subprocess.Popen([str(AIRFLOW), "dags", "test", dag_id], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"{dag_id} failed"
    return time.monotonic() - started, usage.ru_maxrss * 1024


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_name, local_platform(Path(tmp_name) / "p") as p:
        tmp = Path(tmp_name)
        # In the platform's storage, so that the job reads the same file through its volume.
        lines = tmp / "p" / "storage" / "local" / "default" / "bench" / "lines.txt"
        lines.parent.mkdir(parents=True)
        count = args.megabytes * 2**20 // (len(LINE) + 1)
        with open(lines, "w") as out:
            for i in range(count):
                out.write(f"{LINE}{i}\n"[-(len(LINE) + 1) :])
        size = lines.stat().st_size
        env = airflow_env(tmp, DAG_TEMPLATE, p, BENCH_FILE=str(lines))
        # Start-up of `airflow dags test` alone, to take out of both figures.
        empty = dict(env, BENCH_FILE="/dev/null")
        startup, base_rss = run("bench_log_floor", empty)
        floor_s, floor_rss = run("bench_log_floor", env)
        neuro_s, neuro_rss = run("bench_log_neuro", env)
    floor_rate = size / max(floor_s - startup, 1e-3)
    neuro_rate = size / max(neuro_s - startup, 1e-3)
    rows = [
        machine_line(f"python bench/log_throughput.py --megabytes {args.megabytes}"),
        "",
        f"{size / 2**20:.0f} MB in {count} lines of {len(LINE) + 1} bytes; each run's"
        f" `airflow dags test` start-up ({startup:.1f} s, {base_rss / 2**20:.0f} MB RSS)"
        " taken out.",
        "",
        "| route | time | throughput | peak RSS (growth over start-up) | speed / floor |",
        "|---|---|---|---|---|",
        f"| BashOperator `cat` (floor) | {floor_s - startup:.1f} s | {floor_rate / 2**20:.2f} MB/s"
        f" | {floor_rss / 2**20:.0f} MB (+{(floor_rss - base_rss) / 2**20:.0f} MB) | 1.00x |",
        f"| NeuroRunOperator, job_detach=False | {neuro_s - startup:.1f} s"
        f" | {neuro_rate / 2**20:.2f} MB/s | {neuro_rss / 2**20:.0f} MB"
        f" (+{(neuro_rss - base_rss) / 2**20:.0f} MB) | {neuro_rate / floor_rate:.2f}x |",
    ]
    record("logs", "\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=100)
    main(parser.parse_args())
