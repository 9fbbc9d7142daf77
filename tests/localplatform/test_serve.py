"""The platform as a command, and its state across restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import apolo_sdk
import pytest

from airflow_neuro.localplatform import LocalPlatform
from airflow_neuro.localplatform.process import main_process
from airflow_neuro.localplatform.spawn import read_announcement

from .conftest import login, platform_settings
from .helpers import (
    emptied,
    job_processes,
    processes_in,
    read_log,
    start,
    wait_for_output,
    wait_for_status,
)


@asynccontextmanager
async def served(*argv: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, str]]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        served = read_announcement(line)
        yield process, served.api_url, served.token
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def command(kind: str, data_dir: Path) -> list[str]:
    args = ["--port", "0", "--data-dir", str(data_dir)]
    if kind == "module":
        return [sys.executable, "-m", "airflow_neuro.localplatform", *args]
    return [sys.executable, "-c", "from airflow_neuro.cli import main; main()", "platform",
            "serve", *args]  # fmt: skip


@pytest.mark.parametrize("kind", ["module", "cli"])
async def test_serve_command_runs_jobs_and_stops_cleanly(kind: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # By default running jobs outlive a stop (test_restart.py): here the stop ends them.
    ending_jobs = [*command(kind, data_dir), "--on-exit", "end-jobs"]
    async with served(*ending_jobs) as (process, api_url, token):
        assert api_url.startswith("http://127.0.0.1:")
        client = await login(api_url, token, tmp_path / "cfg")
        try:
            done = await start(client, "echo served")
            assert b"".join(await read_log(client, done.id)) == b"served\n"
            live = await start(client, "sh -c 'echo started; exec sleep 60'")
            await wait_for_output(client, live.id, b"started\n")
            ids = job_processes(data_dir / "jobs", live.id)
            main = main_process(ids.init)
            assert main in processes_in(ids.pid_namespace)
        finally:
            await client.close()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(main, 0)
    assert await emptied(ids.pid_namespace) == []
    # The token is kept in the data dir: the same clients work after a restart.
    async with served(*command(kind, data_dir)) as (_, _, token_again):
        assert token_again == token


async def test_restart_keeps_history(tmp_path: Path) -> None:
    settings = platform_settings(tmp_path / "data")
    async with LocalPlatform(settings) as first:
        client = await login(first.api_url, settings.token, tmp_path / "cfg1")
        try:
            finished = await start(client, "echo kept", tags=["keep"])
            await wait_for_status(client, finished.id)
            live = await start(client, "sleep 60", tags=["keep"])
            await wait_for_status(client, live.id, {apolo_sdk.JobStatus.RUNNING})
        finally:
            await client.close()
    async with LocalPlatform(settings) as second:
        client = await login(second.api_url, settings.token, tmp_path / "cfg2")
        try:
            async with client.jobs.list(tags={"keep"}) as jobs:
                found = {job.id: job async for job in jobs}
            assert set(found) == {finished.id, live.id}
            assert found[finished.id].status == apolo_sdk.JobStatus.SUCCEEDED
            interrupted = found[live.id]
            assert interrupted.status == apolo_sdk.JobStatus.FAILED
            assert interrupted.history.reason == "PlatformStopped"
            assert "stopped" in interrupted.history.description
            assert b"".join(await read_log(client, finished.id)) == b"kept\n"
        finally:
            await client.close()
