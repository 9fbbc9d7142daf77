"""NeuroJobTrigger: wait for a platform job in the triggerer, holding no worker slot."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apolo_sdk
from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_neuro.hooks.neuro import NeuroConnectionParams, login, private_config_dir
from airflow_neuro.utils import job_flow
from airflow_neuro.utils.job_info import summary


@dataclass
class _Shared:
    client: apolo_sdk.Client
    config_dir: Path
    users: int = 0


class _Clients:
    """One logged-in client per connection per event loop, shared by all its triggers."""

    def __init__(self) -> None:
        self._shared: dict[tuple[int, str], _Shared] = {}
        self._logins: dict[tuple[int, str], asyncio.Lock] = {}

    async def acquire(self, conn_id: str, retry_budget: float) -> apolo_sdk.Client:
        key = (id(asyncio.get_running_loop()), conn_id)
        async with self._logins.setdefault(key, asyncio.Lock()):
            shared = self._shared.get(key)
            if shared is None:
                # In the triggerer, connections must be fetched without blocking the loop.
                conn = await BaseHook.aget_connection(conn_id)
                params = NeuroConnectionParams.from_connection(conn)
                config_dir = private_config_dir()
                client = await login(params, config_dir, retry_budget)
                shared = self._shared[key] = _Shared(client, config_dir)
            shared.users += 1
            return shared.client

    async def release(self, conn_id: str) -> None:
        key = (id(asyncio.get_running_loop()), conn_id)
        shared = self._shared.get(key)
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            del self._shared[key]
            self._logins.pop(key, None)
            await shared.client.close()
            shutil.rmtree(shared.config_dir, ignore_errors=True)

    def count(self) -> int:
        return len(self._shared)


CLIENTS = _Clients()


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
        client = await CLIENTS.acquire(self.neuro_conn_id, self.retry_budget)
        try:
            if self.follow_log:
                await job_flow.follow_log(client, self.job_id, self.log.info, self.retry_budget)
            wanted = {apolo_sdk.JobStatus(s) for s in self.statuses}
            job = await job_flow.wait_for(
                client, self.job_id, wanted, self.poll_interval, self.retry_budget
            )
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
        client = await CLIENTS.acquire(self.neuro_conn_id, 30.0)
        try:
            await job_flow.cancel(client, self.job_id)
            self.log.info("Cancelled job %s", self.job_id)
        finally:
            await CLIENTS.release(self.neuro_conn_id)
