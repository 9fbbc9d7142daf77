"""NeuroServiceTrigger: wait in the triggerer until a service job answers its health check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_neuro.client import NeuroClient
from airflow_neuro.client.service import HealthProbe, Services
from airflow_neuro.exceptions import ServiceEnded
from airflow_neuro.triggers.events import ServiceEvent
from airflow_neuro.triggers.pool import CLIENTS


class NeuroServiceTrigger(BaseTrigger):
    """Fires with a ``ServiceEvent`` once the job's ``health_path`` answers, or it cannot.

    :param job_id: the service's job.
    :param neuro_conn_id: the ``neuro`` connection.
    :param health_path: the path to check, under the job's HTTP URL.
    :param health_statuses: the statuses that mean "ready".
    :param auth: send the platform token with each check.
    :param deadline: when to give up, in seconds since the epoch (it survives a restart of
        the triggerer, as a relative timeout would not).
    :param poll_interval: the longest wait between two checks, in seconds.
    :param cancel_on_failure: cancel the job when the wait fails while it is live (the
        deadline passed, the token was refused, the platform stayed away) or the deferred
        task is killed: for a service this task started, never for one it only reused.
    :param retry_budget: seconds to ride out a platform outage before giving up.
    """

    def __init__(
        self,
        job_id: str,
        deadline: float,
        neuro_conn_id: str = "neuro_default",
        health_path: str = "/",
        health_statuses: list[int] | None = None,
        auth: bool = True,
        poll_interval: float = 10.0,
        cancel_on_failure: bool = False,
        retry_budget: float = 300.0,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.deadline = deadline
        self.neuro_conn_id = neuro_conn_id
        self.health_path = health_path
        self.health_statuses = list(health_statuses or [200])
        self.auth = auth
        self.poll_interval = poll_interval
        self.cancel_on_failure = cancel_on_failure
        self.retry_budget = retry_budget

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "deadline": self.deadline,
                "neuro_conn_id": self.neuro_conn_id,
                "health_path": self.health_path,
                "health_statuses": self.health_statuses,
                "auth": self.auth,
                "poll_interval": self.poll_interval,
                "cancel_on_failure": self.cancel_on_failure,
                "retry_budget": self.retry_budget,
            },
        )

    def probe(self) -> HealthProbe:
        return HealthProbe(
            path=self.health_path,
            statuses=tuple(self.health_statuses),
            auth=self.auth,
            deadline=self.deadline,
            poll_interval=self.poll_interval,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with CLIENTS.using(self.neuro_conn_id, self.retry_budget) as shared:
            try:
                service = await Services(shared.client).wait_ready(self.job_id, self.probe())
                event = ServiceEvent.ready(service)
            except ServiceEnded as e:  # nothing left to cancel
                event = ServiceEvent.failed(self.job_id, e)
            except Exception as e:
                if self.cancel_on_failure:
                    await self._cancel_after(shared.client, e)
                event = ServiceEvent.failed(self.job_id, e)
        yield TriggerEvent(event.to_json())

    async def _cancel_after(self, client: NeuroClient, error: Exception) -> None:
        try:
            await client.cancel(self.job_id)
            self.log.info("Cancelled job %s: %s", self.job_id, error)
        except Exception as e:  # the wait's own failure is what the task reports
            self.log.error("Could not cancel job %s: %s", self.job_id, e)

    async def on_kill(self) -> None:
        if not self.cancel_on_failure:
            return
        await CLIENTS.cancel(self.neuro_conn_id, self.job_id)
        self.log.info("Cancelled job %s", self.job_id)
