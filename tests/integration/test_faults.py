"""The plugin's async steps against a platform that fails 30 % of requests and cuts streams."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import apolo_sdk
import pytest

from airflow_neuro.hooks.neuro import NeuroConnectionParams, login
from airflow_neuro.job_request import JobRequest
from airflow_neuro.utils import job_flow
from airflow_neuro.utils.retry import PlatformUnavailable

from ..conftest import PlatformProcess


async def logged_in(platform: PlatformProcess, config: Path) -> apolo_sdk.Client:
    params = NeuroConnectionParams(token=platform.token, api_url=platform.api_url)
    return await login(params, config)


def test_job_and_log_survive_faults(faulty_platform: PlatformProcess) -> None:
    async def scenario(config: Path) -> tuple[list[str], apolo_sdk.JobDescription, int]:
        client = await logged_in(faulty_platform, config)
        try:
            identity = ["airflow-dag:faults", "airflow-task:log", "airflow-run:1",
                        "airflow-map-index:-1", "airflow-try:1"]  # fmt: skip
            prepared = JobRequest(
                job_command="sh -c 'for i in $(seq 1 60); do echo line $i ü; sleep 0.05; done'",
                job_image="ubuntu",
            ).resolve(client, identity)
            job = await job_flow.submit_once(client, prepared, identity)
            lines: list[str] = []
            await job_flow.follow_log(client, job.id, lines.append)
            done = await job_flow.wait_for(client, job.id, job_flow.FINISHED, 0.5)
            created = len(await job_flow.find_jobs(client, identity))
            return lines, done, created
        finally:
            await client.close()

    with tempfile.TemporaryDirectory() as config:
        lines, done, created = asyncio.run(scenario(Path(config)))
    assert lines == [f"line {i} ü" for i in range(1, 61)]  # none lost, none twice
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    assert created == 1  # creation was never blindly repeated


def test_a_platform_that_stays_down_fails_in_bounded_time() -> None:
    params = NeuroConnectionParams(token="t", api_url="http://127.0.0.1:9/api/v1")

    async def attempt(config: Path) -> None:
        await login(params, config, retry_budget=3)

    loop_time = asyncio.new_event_loop()
    try:
        with tempfile.TemporaryDirectory() as config:
            started = loop_time.time()
            with pytest.raises(PlatformUnavailable, match="did not answer login for"):
                loop_time.run_until_complete(attempt(Path(config)))
            assert loop_time.time() - started < 10
    finally:
        loop_time.close()
