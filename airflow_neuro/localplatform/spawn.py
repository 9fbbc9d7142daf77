"""The local platform as a separate process, as users run it, and where it serves.

Used by ``airflow-neuro demo``, the benchmarks and the tests: each needs the platform
out of its own process (and event loop), and its URL and token from the line it prints.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .server import ANNOUNCE_FORMAT

ANNOUNCE = re.compile(
    re.escape(ANNOUNCE_FORMAT).replace(r"\{api_url\}", r"(\S+)").replace(r"\{token\}", r"(\S+)")
)


@dataclass(frozen=True)
class Served:
    api_url: str
    token: str


def read_announcement(line: str) -> Served:
    match = ANNOUNCE.search(line)
    if match is None:
        raise RuntimeError(f"the local platform did not start: {line!r}")
    return Served(match.group(1), match.group(2))


@contextmanager
def spawned(
    data_dir: Path,
    *options: str,
    runtimes: Mapping[str, Path | str] | None = None,
    port: int = 0,
    end_jobs: bool = True,
) -> Iterator[Served]:
    """Serve from ``data_dir`` on a loopback port (0: a free one) until the block ends;
    ``runtimes`` maps images to runtime directories, as ``--runtime IMAGE=DIR`` does. The
    stop ends the jobs too, unless ``end_jobs`` is false: a platform started later on the
    same data dir then picks them up."""
    with serving(data_dir, *options, runtimes=runtimes, port=port, end_jobs=end_jobs) as (
        served,
        _,
    ):
        yield served


@contextmanager
def serving(
    data_dir: Path,
    *options: str,
    runtimes: Mapping[str, Path | str] | None = None,
    port: int = 0,
    end_jobs: bool = True,
) -> Iterator[tuple[Served, subprocess.Popen[str]]]:
    """As ``spawned``, with the platform's process, for those who stop it their own way."""
    runtime_options = [
        option
        for image, directory in (runtimes or {}).items()
        for option in ("--runtime", f"{image}={directory}")
    ]
    on_exit = "end-jobs" if end_jobs else "keep-jobs"
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_neuro.localplatform", "--port", str(port),
         "--data-dir", str(data_dir), "--on-exit", on_exit, *runtime_options, *options],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield read_announcement(process.stdout.readline()), process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
