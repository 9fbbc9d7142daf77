"""NeuroJobTrigger: wait for a platform job in the triggerer, holding no worker slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import apolo_sdk
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_neuro.client import FINISHED, JobSummary
from airflow_neuro.triggers.events import JobEvent
from airflow_neuro.triggers.pool import CLIENTS


class NeuroJobTrigger(BaseTrigger):
    """Fires once the job reaches one of ``statuses`` (or has finished), with a ``JobEvent``.

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
        self.statuses = list(statuses or [s.value for s in FINISHED])
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
        shared = None
        try:
            # Inside: a login that fails (a refused token, say) resumes the task with an
            # event that names the connection, as any other failed wait does.
            shared = await CLIENTS.acquire(self.neuro_conn_id, self.retry_budget)
            if self.follow_log:
                async for line in shared.client.log_lines(self.job_id):
                    self.log.info("%s", line)
            wanted = {apolo_sdk.JobStatus(s) for s in self.statuses}
            job = await shared.poller.wait(self.job_id, wanted, self.poll_interval)
            event = JobEvent.done(JobSummary.of(job))
        except Exception as e:
            event = JobEvent.failed(self.job_id, e)
        finally:
            if shared is not None:
                await CLIENTS.release(self.neuro_conn_id)
        yield TriggerEvent(event.to_json())

    async def on_kill(self) -> None:
        if not self.cancel_on_kill:
            return
        await CLIENTS.cancel(self.neuro_conn_id, self.job_id)
        self.log.info("Cancelled job %s", self.job_id)
