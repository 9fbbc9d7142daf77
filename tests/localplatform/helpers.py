from __future__ import annotations

import asyncio
import time
from pathlib import Path

import apolo_sdk

from airflow_neuro.localplatform.ports import namespace_members
from airflow_neuro.localplatform.process import ProcessIds, start_time

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


async def wait_for_output(
    client: apolo_sdk.Client, job_id: str, expected: bytes, timeout: float = 20.0
) -> None:
    """Until the job's log holds ``expected``: how a job tells the test it has got so far,
    as a file it writes under the host's /tmp is out of the test's sight."""
    seen = b""
    async with asyncio.timeout(timeout), client.jobs.monitor(job_id) as stream:
        async for chunk in stream:
            seen += chunk
            if expected in seen:
                return
    raise AssertionError(f"{job_id} ended without printing {expected!r}: {seen!r}")


def job_processes(jobs_dir: Path, job_id: str) -> ProcessIds:
    """The job's processes as the host sees them (the pids a job prints are its namespace's),
    from the platform's ``jobs_dir``."""
    ids = ProcessIds.load(jobs_dir / job_id)
    assert ids is not None, f"{job_id} has no process.json: it never started"
    return ids


def processes_in(pid_namespace: int) -> list[int]:
    """The host pids of the live processes in a PID namespace, as /proc shows them now.

    Zombies are not counted: the namespace's init may stay one for a moment once the job
    has ended, until the machine's init reaps it (bwrap's monitor exits without waiting).
    """
    return [pid for pid in namespace_members(pid_namespace) if start_time(pid) is not None]


async def emptied(pid_namespace: int, timeout: float = 5.0) -> list[int]:
    """The namespace's live processes once none is left, or when ``timeout`` has passed: a
    SIGKILLed init takes a moment to take the rest of the namespace down with it."""
    deadline = time.monotonic() + timeout
    while (left := processes_in(pid_namespace)) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return left


async def start(
    client: apolo_sdk.Client, command: str, **kwargs: object
) -> apolo_sdk.JobDescription:
    return await client.jobs.start(
        image=client.parse.remote_image("ubuntu:22.04"),
        preset_name=str(kwargs.pop("preset_name", "cpu-small")),
        command=command,
        **kwargs,  # type: ignore[arg-type]
    )
