"""NeuroJobStatusSensor: wait until a platform job reaches one of the given statuses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import apolo_sdk
from airflow.sdk import BaseSensorOperator

from airflow_neuro.arguments import check_flags, check_number
from airflow_neuro.client import JobSummary
from airflow_neuro.compat import AirflowSensorTimeout, conf
from airflow_neuro.exceptions import JobArgumentError, NeuroJobError
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.triggers.events import JobEvent
from airflow_neuro.triggers.neuro import NeuroJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_STATUSES = (apolo_sdk.JobStatus.SUCCEEDED, apolo_sdk.JobStatus.FAILED)


def parse_statuses(statuses: Iterable[apolo_sdk.JobStatus | str]) -> frozenset[apolo_sdk.JobStatus]:
    if isinstance(statuses, (str, apolo_sdk.JobStatus)):
        statuses = [statuses]
    parsed = set()
    allowed = ", ".join(s.value for s in apolo_sdk.JobStatus if s != apolo_sdk.JobStatus.UNKNOWN)
    for status in statuses:
        try:
            parsed.add(apolo_sdk.JobStatus(status.lower() if isinstance(status, str) else status))
        except ValueError:
            raise JobArgumentError(
                "job_statuses", f"unknown status {status!r}; allowed: {allowed}"
            ) from None
    if not parsed:
        raise JobArgumentError("job_statuses", f"give at least one of {allowed}")
    return frozenset(parsed)


class NeuroJobStatusSensor(BaseSensorOperator):
    """Wait for a job to reach one of ``job_statuses``.

    :param job_id: the job's id (templated, e.g. from the run operator's XCom).
    :param job_statuses: ``apolo_sdk.JobStatus`` values or their names; by default the job
        has finished (``succeeded`` or ``failed``).
    :param neuro_conn_id: the ``neuro`` connection.
    :param deferrable: wait in the triggerer instead of poking (default:
        ``[operators] default_deferrable``).
    :param retry_budget: seconds to ride out a platform outage before failing.
    :param cancel_on_timeout: cancel the job when the sensor times out, so that a job nobody
        waits for any more does not run on and bill.

    A job that finishes in a status that is not wanted can never reach one, so the sensor
    fails at once instead of waiting for its timeout.
    """

    template_fields: Sequence[str] = ("job_id", "neuro_conn_id")
    ui_color = "#e3f1fb"

    def __init__(
        self,
        *,
        job_id: str,
        job_statuses: Iterable[apolo_sdk.JobStatus | str] = DEFAULT_STATUSES,
        neuro_conn_id: str = NeuroHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        retry_budget: float = 300.0,
        cancel_on_timeout: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_flags([("deferrable", deferrable), ("cancel_on_timeout", cancel_on_timeout)])
        check_number("retry_budget", retry_budget, inclusive=True)
        self.job_id = job_id
        self.job_statuses = parse_statuses(job_statuses)
        self.neuro_conn_id = neuro_conn_id
        self.deferrable = deferrable
        self.retry_budget = retry_budget
        self.cancel_on_timeout = cancel_on_timeout
        self._hook: NeuroHook | None = None

    def _logged_in(self) -> NeuroHook:
        # One login for all the pokes of one run (poke mode); reschedule mode logs in once
        # per poke, as each poke is a new process.
        if self._hook is None:
            self._hook = NeuroHook(self.neuro_conn_id, retry_budget=self.retry_budget)
            self._hook.login()
        return self._hook

    def _checked_job_id(self) -> str:
        if not isinstance(self.job_id, str) or not self.job_id.strip():
            raise JobArgumentError("job_id", f"must be a job id, got {self.job_id!r}")
        return self.job_id.strip()

    def poke(self, context: Context) -> bool:
        job = JobSummary.of(self._logged_in().get_job(self._checked_job_id()))
        self.log.info("Job %s is %s", job.id, job.status)
        return self._reached(job)

    def _reached(self, job: JobSummary) -> bool:
        if job.status in {s.value for s in self.job_statuses}:
            return True
        if job.is_finished:
            wanted = ", ".join(sorted(s.value for s in self.job_statuses))
            raise NeuroJobError(f"{job.describe()}; it will never be {wanted}", job=job)
        return False

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            self.defer(
                trigger=NeuroJobTrigger(
                    job_id=self._checked_job_id(),
                    neuro_conn_id=self.neuro_conn_id,
                    statuses=sorted(s.value for s in self.job_statuses),
                    poll_interval=self.poke_interval,
                    cancel_on_kill=False,  # a sensor watches a job; it does not own it
                    retry_budget=self.retry_budget,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout),
            )
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            self._cancel_timed_out_job()
            raise
        finally:
            if self._hook is not None:
                self._hook.close()
                self._hook = None

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        job = JobEvent.from_json(event).job_or_raise()
        self.log.info("Job %s is %s", job.id, job.status)
        if not self._reached(job):
            raise NeuroJobError(f"the trigger fired before job {job.id} was done", job=job)

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context
    ) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout:
            self._cancel_timed_out_job()
            raise

    def _cancel_timed_out_job(self) -> None:
        if not self.cancel_on_timeout:
            return
        job_id = self._checked_job_id()
        try:
            with NeuroHook(self.neuro_conn_id, retry_budget=30.0) as hook:
                hook.cancel_job(job_id)
            self.log.info("Timed out: cancelled job %s", job_id)
        except Exception:
            self.log.exception("Timed out, and could not cancel job %s", job_id)
