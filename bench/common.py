"""Shared pieces of the benchmarks: a local platform process and this machine's figures."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

from airflow_neuro.localplatform.spawn import Served, spawned

# The platform as its own process, so its work is not counted as the client's.
local_platform = spawned


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def machine_line(command: str) -> str:
    cpus = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"Measured {date.today()} on {cpus} cores, {memory:.0f} GiB, Python"
        f" {platform.python_version()}: `{command}`"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


BENCHMARKS_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def record(section: str, table: str, doc: Path = BENCHMARKS_DOC) -> None:
    """Print ``table`` and put it in ``doc`` between this section's markers."""
    print(table)
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    text = doc.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{doc} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{table}\n{end}{tail}")


def airflow_env(tmp: Path, dag_source: str, platform: Served, **extra: str) -> dict[str, str]:
    """An Airflow home under ``tmp`` with one DAG file and a migrated metadata DB, and the
    platform as the ``neuro_default`` connection: the environment for `airflow` commands."""
    dags = tmp / "dags"
    dags.mkdir()
    (dags / "bench_dags.py").write_text(dag_source)
    (tmp / "airflow").mkdir()
    connection = {"conn_type": "neuro", "password": platform.token,
                  "extra": {"api_url": platform.api_url}}  # fmt: skip
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp}/airflow/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_NEURO_DEFAULT": json.dumps(connection),
        **extra,
    }
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
    return env
