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
    data_dir: Path, *options: str, runtimes: Mapping[str, Path | str] | None = None
) -> Iterator[Served]:
    """Serve from ``data_dir`` on a free loopback port until the block ends; ``runtimes``
    maps images to runtime directories, as ``--runtime IMAGE=DIR`` does."""
    runtime_options = [
        option
        for image, directory in (runtimes or {}).items()
        for option in ("--runtime", f"{image}={directory}")
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_neuro.localplatform", "--port", "0",
         "--data-dir", str(data_dir), *runtime_options, *options],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield read_announcement(process.stdout.readline())
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
