"""NeuroJobTrigger: wait for a platform job in the triggerer, holding no worker slot."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apolo_sdk
from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_neuro.exceptions import NeuroJobError
from airflow_neuro.hooks.neuro import NeuroConnectionParams, login, private_config_dir
from airflow_neuro.utils import job_flow
from airflow_neuro.utils.job_info import summary
from airflow_neuro.utils.retry import retrying


class StatusPoller:
    """Status checks for every job the triggers of one connection wait on, batched.

    Each round is one list of the user's live jobs, plus one status request for each
    waited-on job that has left that list (it finished, or belongs to someone else): at
    most one request per job per interval, however many triggers wait.
    """

    def __init__(self, client: apolo_sdk.Client, retry_budget: float) -> None:
        self._client = client
        self._budget = retry_budget
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
            async with client.jobs.list(statuses=set(job_flow.LIVE), owners=owners) as jobs:
                return {job.id: job async for job in jobs}

        live = await retrying(live_jobs, what="the live job list", budget=self._budget)
        for job_id in list(self._waiters):
            job = live.get(job_id) or await job_flow.status(client, job_id, self._budget)
            for wanted, future in self._waiters.get(job_id, []):
                if not future.done() and (job.status in wanted or job.status.is_finished):
                    future.set_result(job)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class _Shared:
    client: apolo_sdk.Client
    config_dir: Path
    poller: StatusPoller
    users: int = 0


class _Clients:
    """One logged-in client per connection per event loop, shared by all its triggers."""

    def __init__(self) -> None:
        self._shared: dict[tuple[int, str], _Shared] = {}
        self._logins: dict[tuple[int, str], asyncio.Lock] = {}

    async def acquire(self, conn_id: str, retry_budget: float) -> _Shared:
        key = (id(asyncio.get_running_loop()), conn_id)
        async with self._logins.setdefault(key, asyncio.Lock()):
            shared = self._shared.get(key)
            if shared is None:
                # In the triggerer, connections must be fetched without blocking the loop.
                conn = await BaseHook.aget_connection(conn_id)
                params = NeuroConnectionParams.from_connection(conn)
                config_dir = private_config_dir()
                client = await login(params, config_dir, retry_budget)
                poller = StatusPoller(client, retry_budget)
                shared = self._shared[key] = _Shared(client, config_dir, poller)
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
            shutil.rmtree(shared.config_dir, ignore_errors=True)

    def count(self) -> int:
        return len(self._shared)


CLIENTS = _Clients()


def job_from_event(event: dict[str, Any]) -> dict[str, Any]:
    """The job summary a NeuroJobTrigger event carries, or the failure it reports."""
    if event.get("result") != "done":
        raise NeuroJobError(f"waiting for job {event.get('job_id')} failed: {event.get('message')}")
    return dict(event["job"])


class NeuroJobTrigger(BaseTrigger):
    """Fires once the job reaches one of ``statuses`` (or has finished).

    :param job_id: the job to wait on.
    :param neuro_conn_id: the ``neuro`` connection.
    :param statuses: status names to wait for.
    :param poll_interval: the longest wait between two status checks, in seconds.
    :param follow_log: also copy the job's log, line by line, into the task's log.
    :param cancel_on_kill: cancel the job when a user kills the deferred task.
    :param retry_budget: seconds to ride out a platform outage before giving up.
    """

    def __init__(
        self,
        job_id: str,
        neuro_conn_id: str = "neuro_default",
        statuses: list[str] | None = None,
        poll_interval: float = 10.0,
        follow_log: bool = False,
        cancel_on_kill: bool = True,
        retry_budget: float = 300.0,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.neuro_conn_id = neuro_conn_id
        self.statuses = list(statuses or [s.value for s in job_flow.FINISHED])
        self.poll_interval = poll_interval
        self.follow_log = follow_log
        self.cancel_on_kill = cancel_on_kill
        self.retry_budget = retry_budget

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "neuro_conn_id": self.neuro_conn_id,
                "statuses": self.statuses,
                "poll_interval": self.poll_interval,
                "follow_log": self.follow_log,
                "cancel_on_kill": self.cancel_on_kill,
                "retry_budget": self.retry_budget,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        shared = await CLIENTS.acquire(self.neuro_conn_id, self.retry_budget)
        try:
            if self.follow_log:
                await job_flow.follow_log(
                    shared.client, self.job_id, self.log.info, self.retry_budget
                )
            wanted = {apolo_sdk.JobStatus(s) for s in self.statuses}
            job = await shared.poller.wait(self.job_id, wanted, self.poll_interval)
            yield TriggerEvent({"result": "done", "job": summary(job)})
        except Exception as e:
            yield TriggerEvent(
                {"result": "error", "job_id": self.job_id, "message": f"{type(e).__name__}: {e}"}
            )
        finally:
            await CLIENTS.release(self.neuro_conn_id)

    async def on_kill(self) -> None:
        if not self.cancel_on_kill:
            return
        shared = await CLIENTS.acquire(self.neuro_conn_id, 30.0)
        try:
            await job_flow.cancel(shared.client, self.job_id)
            self.log.info("Cancelled job %s", self.job_id)
        finally:
            await CLIENTS.release(self.neuro_conn_id)
