from __future__ import annotations

import asyncio
import time

import apolo_sdk

FINISHED = {
    apolo_sdk.JobStatus.SUCCEEDED,
    apolo_sdk.JobStatus.FAILED,
    apolo_sdk.JobStatus.CANCELLED,
}


async def wait_for_status(
    client: apolo_sdk.Client,
    job_id: str,
    statuses: set[apolo_sdk.JobStatus] = FINISHED,
    timeout: float = 20.0,
) -> apolo_sdk.JobDescription:
    deadline = time.monotonic() + timeout
    while True:
        job = await client.jobs.status(job_id)
        if job.status in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"{job_id} still {job.status} after {timeout}s")
        await asyncio.sleep(0.05)


async def read_log(client: apolo_sdk.Client, job_id: str, **kwargs: object) -> list[bytes]:
    chunks = []
    async with client.jobs.monitor(job_id, **kwargs) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return chunks


async def start(
    client: apolo_sdk.Client, command: str, **kwargs: object
) -> apolo_sdk.JobDescription:
    return await client.jobs.start(
        image=client.parse.remote_image("ubuntu:22.04"),
        preset_name=str(kwargs.pop("preset_name", "cpu-small")),
        command=command,
        **kwargs,  # type: ignore[arg-type]
    )
