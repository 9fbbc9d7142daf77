"""The plugin's async steps against a platform that fails 30 % of requests and cuts streams."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import apolo_sdk
import pytest

from airflow_neuro.client import FINISHED, NeuroClient, NeuroConnectionParams, TaskIdentity
from airflow_neuro.client.connection import login
from airflow_neuro.exceptions import PlatformUnavailable
from airflow_neuro.job_request import JobRequest

from ..conftest import PlatformProcess


def params_of(platform: PlatformProcess) -> NeuroConnectionParams:
    return NeuroConnectionParams(token=platform.token, api_url=platform.api_url)


def test_job_and_log_survive_faults(faulty_platform: PlatformProcess) -> None:
    async def scenario() -> tuple[list[str], apolo_sdk.JobDescription, int]:
        async with NeuroClient.session(params_of(faulty_platform)) as client:
            identity = TaskIdentity("faults", "log", "1", -1, 1)
            prepared = JobRequest(
                job_command="sh -c 'for i in $(seq 1 60); do echo line $i ü; sleep 0.05; done'",
                job_image="ubuntu",
            ).resolve(client.sdk, identity.tags)
            job = await client.submit_once(prepared, identity)
            lines = [line async for line in client.log_lines(job.id)]
            done = await client.wait_for(job.id, FINISHED, 0.5)
            created = len(await client.find_jobs(identity.tags))
            return lines, done, created

    lines, done, created = asyncio.run(scenario())
    assert lines == [f"line {i} ü" for i in range(1, 61)]  # none lost, none twice
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    assert created == 1  # creation was never blindly repeated


def test_a_stream_cut_just_before_the_job_ends_is_resumed(
    cutting_platform: PlatformProcess,
) -> None:
    """The consumer dwells on the first line until the job has ended, so the first cut is
    seen only then: it must not pass for the end of the log."""

    async def scenario() -> list[str]:
        async with NeuroClient.session(params_of(cutting_platform)) as client:
            identity = TaskIdentity("faults", "cut", "1", -1, 1)
            prepared = JobRequest(
                job_command="sh -c 'for i in $(seq 1 20); do echo line $i; sleep 0.05; done'",
                job_image="ubuntu",
            ).resolve(client.sdk, identity.tags)
            job = await client.submit_once(prepared, identity)
            lines: list[str] = []
            async for line in client.log_lines(job.id):
                if not lines:
                    await asyncio.sleep(2)  # the job takes 1 s
                lines.append(line)
            return lines

    assert asyncio.run(scenario()) == [f"line {i}" for i in range(1, 21)]


def test_a_platform_that_stays_down_fails_in_bounded_time() -> None:
    params = NeuroConnectionParams(token="t", api_url="http://127.0.0.1:9/api/v1")

    async def attempt(config: Path) -> None:
        await login(params, config, 3)

    loop_time = asyncio.new_event_loop()
    try:
        with tempfile.TemporaryDirectory() as config:
            started = loop_time.time()
            with pytest.raises(PlatformUnavailable, match="did not answer login for"):
                loop_time.run_until_complete(attempt(Path(config)))
            assert loop_time.time() - started < 10
    finally:
        loop_time.close()
