"""What the triggers of one connection share in the triggerer: one login, one status poll.

A triggerer runs many triggers in one event loop; a login per trigger and a status
request per job per interval would not scale to thousands of waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import apolo_sdk
from airflow.sdk import BaseHook

from airflow_neuro.client import LIVE, NeuroClient, NeuroConnectionParams


class StatusPoller:
    """Status checks for every job the triggers of one connection wait on, batched.

    Each round is one list of the user's live jobs, plus one status request for each
    waited-on job that has left that list (it finished, or belongs to someone else): at
    most one request per job per interval, however many triggers wait.
    """

    def __init__(self, client: NeuroClient) -> None:
        self._client = client
        self._waiters: dict[str, list[tuple[set[apolo_sdk.JobStatus], asyncio.Future[Any]]]] = {}
        self._intervals: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    async def wait(
        self, job_id: str, wanted: set[apolo_sdk.JobStatus], interval: float
    ) -> apolo_sdk.JobDescription:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiter = (wanted, future)
        self._waiters.setdefault(job_id, []).append(waiter)
        self._intervals.append(interval)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="neuro-status-poller")
        try:
            return await future  # type: ignore[no-any-return]
        finally:
            self._intervals.remove(interval)
            waiters = self._waiters.get(job_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(job_id, None)

    async def _run(self) -> None:
        while self._waiters:
            try:
                await self._round()
            except Exception as e:  # the retry budget is spent: every waiter hears it
                for waiters in self._waiters.values():
                    for _, future in waiters:
                        if not future.done():
                            future.set_exception(e)
                return
            await asyncio.sleep(min(self._intervals, default=1.0))

    async def _round(self) -> None:
        self.rounds += 1
        client = self._client

        async def live_jobs() -> dict[str, apolo_sdk.JobDescription]:
            owners = {client.config.username}
            async with client.sdk.jobs.list(statuses=set(LIVE), owners=owners) as jobs:
                return {job.id: job async for job in jobs}

        live = await client.retrying(live_jobs, "the live job list")
        for job_id in list(self._waiters):
            job = live.get(job_id) or await client.status(job_id)
            for wanted, future in self._waiters.get(job_id, []):
                if not future.done() and (job.status in wanted or job.status.is_finished):
                    future.set_result(job)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class Shared:
    client: NeuroClient
    poller: StatusPoller
    users: int = 0


class ClientPool:
    """One logged-in client per connection per event loop, shared by all its triggers."""

    def __init__(self) -> None:
        self._shared: dict[tuple[int, str], Shared] = {}
        self._logins: dict[tuple[int, str], asyncio.Lock] = {}

    async def acquire(self, conn_id: str, retry_budget: float) -> Shared:
        key = (id(asyncio.get_running_loop()), conn_id)
        async with self._logins.setdefault(key, asyncio.Lock()):
            shared = self._shared.get(key)
            if shared is None:
                # In the triggerer, connections must be fetched without blocking the loop.
                conn = await BaseHook.aget_connection(conn_id)
                params = NeuroConnectionParams.from_connection(conn)
                client = await NeuroClient.connect(params, retry_budget)
                shared = self._shared[key] = Shared(client, StatusPoller(client))
            shared.users += 1
            return shared

    async def release(self, conn_id: str) -> None:
        key = (id(asyncio.get_running_loop()), conn_id)
        shared = self._shared.get(key)
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            del self._shared[key]
            self._logins.pop(key, None)
            await shared.poller.close()
            await shared.client.close()

    @contextlib.asynccontextmanager
    async def using(self, conn_id: str, retry_budget: float) -> AsyncIterator[Shared]:
        shared = await self.acquire(conn_id, retry_budget)
        try:
            yield shared
        finally:
            await self.release(conn_id)

    async def cancel(self, conn_id: str, job_id: str) -> None:
        """Cancel a job with the connection's shared client: what a killed trigger does."""
        async with self.using(conn_id, 30.0) as shared:
            await shared.client.cancel(job_id)

    def count(self) -> int:
        return len(self._shared)


CLIENTS = ClientPool()
