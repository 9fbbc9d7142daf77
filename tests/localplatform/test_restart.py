"""Jobs outlive the platform process; a platform started on the same data dir picks them up."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import apolo_sdk
import pytest

from airflow_neuro.localplatform import LocalPlatform, sandbox
from airflow_neuro.localplatform.process import ProcessIds, start_time

from .conftest import login, platform_settings
from .helpers import emptied, read_log, start, wait_for_status

pytestmark = pytest.mark.skipif(sandbox.bwrap_binary() is None, reason="bubblewrap missing")


TOKEN = platform_settings(Path("/unused")).token


async def started_then_left(tmp_path: Path, command: str) -> tuple[str, ProcessIds]:
    """Start ``command`` on a platform that stops and leaves it running."""
    settings = dataclasses.replace(
        platform_settings(tmp_path / "data", TOKEN), keep_jobs_on_stop=True
    )
    async with LocalPlatform(settings) as first:
        client = await login(first.api_url, TOKEN, tmp_path / "sdk-first")
        try:
            job = await start(client, command)
            await wait_for_status(client, job.id, {apolo_sdk.JobStatus.RUNNING})
            [line] = [chunk async for chunk in _first_chunk(client, job.id)]
            assert line == b"up\n"
        finally:
            await client.close()
    ids = ProcessIds.load(settings.jobs_dir / job.id)
    assert ids is not None
    assert start_time(ids.init) is not None  # the platform has gone, the job has not
    return job.id, ids


async def _first_chunk(client: apolo_sdk.Client, job_id: str) -> AsyncIterator[bytes]:
    async with client.jobs.monitor(job_id) as stream:
        async for chunk in stream:
            yield chunk
            return


async def test_a_job_that_ends_while_the_platform_is_down_keeps_its_exit_code_and_log(
    tmp_path: Path,
) -> None:
    job_id, _ = await started_then_left(tmp_path, "sh -c 'echo up; sleep 1; echo down; exit 3'")
    await asyncio.sleep(2)  # it ends with nobody watching
    async with LocalPlatform(platform_settings(tmp_path / "data", TOKEN)) as again:
        client = await login(again.api_url, TOKEN, tmp_path / "sdk-again")
        try:
            done = await wait_for_status(client, job_id)
            assert done.status == apolo_sdk.JobStatus.FAILED
            assert done.history.reason == "Error"
            assert done.history.exit_code == 3
            assert b"".join(await read_log(client, job_id)) == b"up\ndown\n"
        finally:
            await client.close()


async def test_a_running_job_is_followed_and_cancelled_by_the_next_platform(
    tmp_path: Path,
) -> None:
    script = "trap 'echo stopping; exit 0' TERM; echo up; sleep 60 & wait"
    job_id, ids = await started_then_left(tmp_path, f"sh -c {shlex.quote(script)}")
    async with LocalPlatform(platform_settings(tmp_path / "data", TOKEN)) as again:
        client = await login(again.api_url, TOKEN, tmp_path / "sdk-again")
        try:
            running = await client.jobs.status(job_id)
            assert running.status == apolo_sdk.JobStatus.RUNNING
            reading = asyncio.ensure_future(read_log(client, job_id))
            await asyncio.sleep(0.5)
            assert not reading.done()  # a live log, followed again
            await client.jobs.kill(job_id)
            assert b"".join(await asyncio.wait_for(reading, 10)) == b"up\nstopping\n"
            done = await wait_for_status(client, job_id)
            assert done.status == apolo_sdk.JobStatus.CANCELLED
        finally:
            await client.close()
    assert await emptied(ids.pid_namespace) == []  # nothing of it is left


async def test_a_job_whose_processes_vanished_without_an_exit_code_is_failed(
    tmp_path: Path,
) -> None:
    job_id, ids = await started_then_left(tmp_path, "sh -c 'echo up; sleep 60'")
    # As a reboot would: every process gone at once, the monitor that records the exit
    # code first.
    os.kill(ids.monitor, signal.SIGKILL)
    os.kill(ids.init, signal.SIGKILL)
    for _ in range(100):
        if start_time(ids.monitor) is None:
            break
        await asyncio.sleep(0.02)
    async with LocalPlatform(platform_settings(tmp_path / "data", TOKEN)) as again:
        client = await login(again.api_url, TOKEN, tmp_path / "sdk-again")
        try:
            done = await wait_for_status(client, job_id)
            assert done.status == apolo_sdk.JobStatus.FAILED
            assert done.history.reason == "PlatformStopped"
            assert "left no exit code" in (done.history.description or "")
        finally:
            await client.close()


async def test_an_in_process_platform_ends_its_jobs_when_it_stops(tmp_path: Path) -> None:
    async with LocalPlatform(platform_settings(tmp_path / "data", TOKEN)) as first:
        client = await login(first.api_url, TOKEN, tmp_path / "sdk")
        try:
            job = await start(client, "sleep 60")
            await wait_for_status(client, job.id, {apolo_sdk.JobStatus.RUNNING})
        finally:
            await client.close()
    ids = ProcessIds.load(first.settings.jobs_dir / job.id)
    assert ids is not None
    for _ in range(100):
        if start_time(ids.init) is None:
            break
        await asyncio.sleep(0.02)
    assert start_time(ids.init) is None
