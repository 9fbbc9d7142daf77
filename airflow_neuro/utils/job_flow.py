"""The async steps of running a job, shared by the operator (through the hook) and the trigger.

Find a job from an earlier try, create one without ever creating two, follow its log
without losing or repeating a line, and wait for a status, all through transient faults.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import shutil
from collections.abc import Callable, Iterable

import apolo_sdk

from airflow_neuro.hooks.neuro import NeuroConnectionParams, login, private_config_dir
from airflow_neuro.job_request import JobArgumentError, PreparedJob
from airflow_neuro.utils.retry import is_transient, retrying

LIVE = frozenset({apolo_sdk.JobStatus.PENDING, apolo_sdk.JobStatus.RUNNING,
                  apolo_sdk.JobStatus.SUSPENDED})  # fmt: skip
FINISHED = frozenset(s for s in apolo_sdk.JobStatus if s.is_finished)
STARTED = FINISHED | {apolo_sdk.JobStatus.RUNNING}
NAME_TAKEN = re.compile(r"job with name '[^']*' and project '[^']*' already exists: '([^']+)'")


async def find_jobs(
    client: apolo_sdk.Client,
    tags: Iterable[str],
    statuses: Iterable[apolo_sdk.JobStatus] = (),
    budget: float = 300.0,
) -> list[apolo_sdk.JobDescription]:
    """Jobs carrying every tag, newest first."""
    wanted, states = set(tags), set(statuses)

    async def listed() -> list[apolo_sdk.JobDescription]:
        async with client.jobs.list(tags=wanted, statuses=states, reverse=True) as jobs:
            return [job async for job in jobs]

    return await retrying(listed, what="the job list", budget=budget)


async def status(
    client: apolo_sdk.Client, job_id: str, budget: float = 300.0
) -> apolo_sdk.JobDescription:
    return await retrying(lambda: client.jobs.status(job_id), what=f"the status of {job_id}",
                          budget=budget)  # fmt: skip


async def submit_once(
    client: apolo_sdk.Client,
    prepared: PreparedJob,
    identity: list[str],
    budget: float = 300.0,
) -> apolo_sdk.JobDescription:
    """Create the job; after an answer that may have been lost, look for it before trying again."""

    async def landed() -> apolo_sdk.JobDescription | None:
        found = await find_jobs(client, identity, budget=budget)
        return found[0] if found else None

    async def create() -> apolo_sdk.JobDescription:
        try:
            return await prepared.submit(client)
        except apolo_sdk.IllegalArgumentError as e:
            taken = NAME_TAKEN.search(str(e))
            if taken is None:
                raise
            # Ours from an earlier attempt: use it. Someone else's: say so by name.
            other = await status(client, taken.group(1), budget)
            if set(identity[:4]) <= set(other.tags):
                return other
            raise JobArgumentError(
                "job_name",
                f"{prepared.name!r} is taken by live job {other.id}, not started by this task",
            ) from None
        except Exception as e:
            if not is_transient(e):
                raise
            job = await landed()
            if job is not None:
                return job
            raise

    return await retrying(create, what="creating the job", budget=budget)


async def follow_log(
    client: apolo_sdk.Client,
    job_id: str,
    emit: Callable[[str], object],
    budget: float = 300.0,
) -> None:
    """Emit the job's log line by line as it comes, until the job ends.

    A stream that breaks is opened again and the bytes already emitted are skipped, so no
    line is lost or repeated; a UTF-8 character split across chunks is joined first. The
    SDK ends a cut WebSocket as quietly as a finished one, so a stream that ends while the
    job still runs is resumed, and after any cut the finished log is read once more to be
    sure of its tail.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    received = 0

    def feed(text: str) -> None:
        nonlocal pending
        pending += text
        *lines, pending = pending.split("\n")
        for line in lines:
            emit(line.rstrip("\r"))

    async def stream() -> None:
        nonlocal received
        skip = received
        async with client.jobs.monitor(job_id) as chunks:
            async for chunk in chunks:
                if skip:
                    drop = min(skip, len(chunk))
                    chunk, skip = chunk[drop:], skip - drop
                    if not chunk:
                        continue
                received += len(chunk)
                feed(decoder.decode(chunk))

    cuts = 0
    while True:
        await retrying(
            stream, what=f"the log of {job_id}", budget=budget, progress=lambda: received
        )
        job = await status(client, job_id, budget)
        if not job.status.is_finished:
            cuts += 1  # closed under a live job: the connection was cut
            continue
        if cuts == 0:
            break
        cuts = 0  # one more pass over the finished log, to be sure of its tail
    feed(decoder.decode(b"", final=True))
    if pending:
        emit(pending)


async def wait_for(
    client: apolo_sdk.Client,
    job_id: str,
    wanted: Iterable[apolo_sdk.JobStatus],
    poll_interval: float,
    budget: float = 300.0,
    first_delay: float = 0.05,
) -> apolo_sdk.JobDescription:
    """Poll until the job is in one of ``wanted`` (or has finished): soon at first, then less."""
    states = set(wanted)
    delay = first_delay
    while True:
        job = await status(client, job_id, budget)
        if job.status in states or job.status.is_finished:
            return job
        await asyncio.sleep(delay)
        delay = min(poll_interval, delay * 1.5)


async def cancel(client: apolo_sdk.Client, job_id: str, budget: float = 60.0) -> None:
    await retrying(lambda: client.jobs.kill(job_id), what=f"cancelling {job_id}", budget=budget)


async def cancel_with(params: NeuroConnectionParams, job_id: str, budget: float = 30.0) -> None:
    """Cancel a job with a login of its own, for callers that cannot use a hook's loop."""
    config_dir = private_config_dir()
    try:
        client = await login(params, config_dir, budget)
        try:
            await cancel(client, job_id, budget)
        finally:
            await client.close()
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)
