"""apolo-sdk 26.9 and the official `apolo` CLI against the local platform."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import apolo_sdk
import pytest

from airflow_neuro.localplatform import LocalPlatform

FINISHED = {
    apolo_sdk.JobStatus.SUCCEEDED,
    apolo_sdk.JobStatus.FAILED,
    apolo_sdk.JobStatus.CANCELLED,
}
APOLO = str(Path(sys.executable).with_name("apolo"))


async def wait_finished(client: apolo_sdk.Client, job_id: str) -> apolo_sdk.JobDescription:
    deadline = time.monotonic() + 20
    while (job := await client.jobs.status(job_id)).status not in FINISHED:
        assert time.monotonic() < deadline, f"{job_id} is still {job.status}"
        await asyncio.sleep(0.05)
    return job


async def log_of(client: apolo_sdk.Client, job_id: str) -> bytes:
    async with client.jobs.monitor(job_id) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def test_sdk_starts_and_runs_jobs(client: apolo_sdk.Client) -> None:
    assert apolo_sdk.__version__.startswith("26.")
    assert client.config.cluster_name == "local"
    started = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-medium",
        command='sh -c \'printf "\\320"; sleep 0.2; printf "\\226 ok\\n"\'',
        tags=["sdk:26"],
    )
    done = await wait_finished(client, started.id)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    assert await log_of(client, started.id) == "Ж ok\n".encode()

    container = apolo_sdk.Container(
        image=client.parse.remote_image("ubuntu"),
        resources=apolo_sdk.Resources(cpu=0.2, memory=64 * 2**20),
        command="sh -c 'exit 4'",
    )
    failed = await wait_finished(client, (await client.jobs.run(container)).id)
    assert failed.status == apolo_sdk.JobStatus.FAILED
    assert failed.history.exit_code == 4
    async with client.jobs.list(tags={"sdk:26"}) as jobs:
        assert [j.id async for j in jobs] == [started.id]


class Cli:
    """Runs `apolo` with its own config dir, never the user's."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}

    async def __call__(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            APOLO, "--neuromation-config", str(self.config), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, env=self.env,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, (args, out.decode(), err.decode())
        return out.decode()


@pytest.fixture
async def cli(platform: LocalPlatform, tmp_path: Path) -> Cli:
    run = Cli(tmp_path / "cli-config")
    said = await run("config", "login-with-token", platform.settings.token, platform.api_url)
    assert "current cluster is local" in said
    return run


async def test_cli_runs_lists_shows_logs_and_kills(cli: Cli, client: apolo_sdk.Client) -> None:
    job_id = (
        await cli(
            "-q",
            "run",
            "--detach",
            "--preset",
            "cpu-small",
            "--tag",
            "cli",
            "ubuntu",
            "--",
            "sh",
            "-c",
            "echo from-cli; echo second",
        )
    ).strip()
    assert job_id.startswith("job-")
    await wait_finished(client, job_id)

    listed = await cli("ps", "--all", "--tag", "cli", "--format", "id status")
    assert job_id in listed
    assert "succeeded" in listed
    status = await cli("status", job_id)
    assert "succeeded" in status
    assert "cpu-small" in status
    assert await cli("logs", job_id) == "from-cli\nsecond\n"

    long_id = (
        await cli("-q", "run", "--detach", "--preset", "cpu-small", "ubuntu", "--", "sleep", "60")
    ).strip()
    await cli("kill", long_id)
    killed = await client.jobs.status(long_id)
    assert killed.status == apolo_sdk.JobStatus.CANCELLED
    assert killed.history.reason == "UserRequested"
    assert "cancelled" in await cli("status", long_id)
