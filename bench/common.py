"""Shared pieces of the benchmarks: a local platform process and this machine's figures."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ANNOUNCE = re.compile(r"serving API (\S+) token (\S+)")


@dataclass(frozen=True)
class Platform:
    api_url: str
    token: str


@contextmanager
def local_platform(data_dir: Path, *options: str) -> Iterator[Platform]:
    """The local platform as its own process, so its work is not counted as the client's."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_neuro.localplatform", "--port", "0",
         "--data-dir", str(data_dir), *options],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        match = ANNOUNCE.search(process.stdout.readline())
        assert match, "the local platform did not start"
        yield Platform(match.group(1), match.group(2))
    finally:
        process.terminate()
        process.wait(60)


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
