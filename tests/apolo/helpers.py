"""Waiting for jobs and running the `apolo` CLI against a local platform."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
import time
from pathlib import Path

import apolo_sdk

FINISHED = frozenset(
    {apolo_sdk.JobStatus.SUCCEEDED, apolo_sdk.JobStatus.FAILED, apolo_sdk.JobStatus.CANCELLED}
)
# The CLIs of the virtualenv running the tests, not whatever is first on PATH.
APOLO = str(Path(sys.executable).with_name("apolo"))
APOLO_FLOW = str(Path(sys.executable).with_name("apolo-flow"))


async def wait_for_status(
    client: apolo_sdk.Client,
    job_id: str,
    statuses: frozenset[apolo_sdk.JobStatus] = FINISHED,
    timeout: float = 20.0,
) -> apolo_sdk.JobDescription:
    deadline = time.monotonic() + timeout
    while (job := await client.jobs.status(job_id)).status not in statuses:
        assert time.monotonic() < deadline, f"{job_id} is still {job.status}"
        await asyncio.sleep(0.05)
    return job


async def read_log(client: apolo_sdk.Client, job_id: str) -> bytes:
    async with client.jobs.monitor(job_id) as chunks:
        return b"".join([chunk async for chunk in chunks])


class Cli:
    """Runs `apolo` (or `apolo-flow`) in a subprocess with its own config dir, home and cwd.

    The CLI logs every run to ~/.apolo/logs (token included), reads .apolo.toml from the
    working directory up, and by default asks PyPI for new versions and sends usage
    statistics: a fake home, a scratch directory and two global options keep all of that
    local.
    """

    def __init__(self, root: Path) -> None:
        self.config = root / "config"
        self.home = root / "home"
        self.cwd = root / "cwd"
        self.home.mkdir(parents=True)
        self.cwd.mkdir()
        # Variables that would point the CLI at another config or login are left out.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("APOLO", "NEURO"))}
        self.env = {
            **inherited,
            "HOME": str(self.home),
            "TERM": "dumb",
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "PYTHONIOENCODING": "utf-8",
        }

    async def run(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        global_options = ("--config-path", str(self.config), "--disable-pypi-version-check",
                          "--skip-stats", "--color", "no")  # fmt: skip
        return await self._exec([APOLO, *global_options, *args], self.env, self.cwd, check)

    async def flow(self, *args: str, cwd: Path, check: bool = True) -> tuple[int, bytes, bytes]:
        """Runs `apolo-flow` in a flow project's directory (the one holding `.apolo/`).

        apolo-flow takes none of the options above, and starts jobs by running `apolo`
        from PATH with none of them either: the config dir goes in APOLO_CONFIG (read by
        both), the version check is turned off by its variable, and an `apolo` first on PATH
        adds --skip-stats.
        """
        wrapper = self.home / "bin" / "apolo"
        if not wrapper.exists():
            wrapper.parent.mkdir()
            wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(APOLO)} --skip-stats "$@"\n')
            wrapper.chmod(0o755)
        env = {
            **self.env,
            "APOLO_CONFIG": str(self.config),
            "NEURO_CLI_DISABLE_PYPI_VERSION_CHECK": "1",
            "PATH": os.pathsep.join([str(wrapper.parent), self.env.get("PATH", os.defpath)]),
        }
        return await self._exec([APOLO_FLOW, *args], env, cwd, check)

    async def _exec(
        self, argv: list[str], env: dict[str, str], cwd: Path, check: bool
    ) -> tuple[int, bytes, bytes]:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        code = process.returncode
        assert code is not None
        if check:
            assert code == 0, (argv, code, out.decode(), err.decode())
        return code, out, err

    async def __call__(self, *args: str) -> str:
        return (await self.run(*args))[1].decode()


def table_rows(output: str) -> list[list[str]]:
    """The cells of each line of a CLI table (cells are at least two spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]


def status_fields(output: str) -> dict[str, str]:
    """`apolo status` as {field: value}; continuation lines of a field are left out."""
    fields: dict[str, str] = {}
    for line in output.splitlines():
        if line[:2].strip():
            key, _, value = line.strip().partition("  ")
            fields[key] = value.strip()
    return fields
