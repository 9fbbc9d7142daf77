"""Serve a model as a platform job, ask it for predictions, and stop it.

``NeuroDeployOperator`` starts (or keeps) a job with an HTTP port and succeeds once the
server answers, not merely once the job runs. ``NeuroModelRequestOperator`` and its
predict / info forms send one request to it; ``NeuroUndeployOperator`` stops it, and works
as a teardown task, so the service stops even when a prediction fails.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import apolo_sdk
from airflow.sdk import BaseOperator

from airflow_neuro.arguments import check_flag, check_number
from airflow_neuro.client import FINISHED, LIVE, TaskIdentity
from airflow_neuro.client.http import check_method, check_seconds, check_statuses
from airflow_neuro.client.identity import spec_tag
from airflow_neuro.client.retry import RETRY_STATUSES
from airflow_neuro.client.service import HealthProbe, ServiceInfo
from airflow_neuro.exceptions import (
    JobArgumentError,
    NeuroJobError,
    ServiceEnded,
    ServiceRequestError,
)
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.job_request import JobRequest, check_name, check_tags
from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.triggers.events import ServiceEvent
from airflow_neuro.triggers.serving import NeuroServiceTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

IF_EXISTS = ("reuse", "replace", "fail")
ONE_DAY = 24 * 3600.0


class NeuroDeployOperator(NeuroRunOperator):
    """Start a long-running service job and wait until it answers over HTTP.

    Takes every argument of ``NeuroRunOperator``; ``job_name`` and ``job_http_port`` are
    required, and the job lives a day unless ``job_lifespan`` says otherwise.

    :param health_path: the path that answers once the server is ready (under the job's URL).
    :param health_statuses: the statuses of ``health_path`` that mean "ready".
    :param ready_timeout: seconds from submitting to the first healthy answer; after that
        the task fails, and cancels the job if it started it.
    :param if_exists: what to do when a live job already has ``job_name``: ``"reuse"`` it
        when it was started from the same job spec (else replace it), ``"replace"`` it, or
        ``"fail"``.

    XCom ``return_value``: the job's ``id``, ``status``, ``exit_code``, ``http_url``, plus
    ``name``, ``internal_url`` (how other jobs reach it) and ``ready_after_s``.
    """

    template_fields: Sequence[str] = (*NeuroRunOperator.template_fields, "health_path")
    ui_color = "#d9f2e6"

    def __init__(
        self,
        job_command: str,
        job_image: str,
        *,
        job_name: str,
        job_http_port: int | str,
        health_path: str = "/",
        health_statuses: Sequence[int] = (200,),
        ready_timeout: float = 900.0,
        if_exists: str = "reuse",
        job_lifespan: float | None = ONE_DAY,
        **kwargs: Any,
    ) -> None:
        for fixed in ("job_detach", "reuse_finished_job", "cache"):
            if fixed in kwargs:
                raise JobArgumentError(
                    fixed, "a service runs until it is stopped; NeuroDeployOperator sets it"
                )
        super().__init__(
            job_command=job_command,
            job_image=job_image,
            job_name=job_name,
            job_http_port=job_http_port,
            job_lifespan=job_lifespan,
            job_detach=True,
            **kwargs,
        )
        if not job_name:
            raise JobArgumentError("job_name", "a service needs a name, stable across deploys")
        if job_http_port is None or job_http_port == "":
            raise JobArgumentError("job_http_port", "a service needs the port its server uses")
        if if_exists not in IF_EXISTS:
            raise JobArgumentError("if_exists", f"must be one of {IF_EXISTS}, got {if_exists!r}")
        self.health_path = health_path
        self.health_statuses = sorted(check_statuses("health_statuses", health_statuses))
        if not self.health_statuses:
            raise JobArgumentError("health_statuses", "name at least one status, e.g. (200,)")
        self.ready_timeout = check_seconds("ready_timeout", ready_timeout)
        self.if_exists = if_exists

    def job_request(self) -> JobRequest:
        """The run operator's job, tagged with its spec's fingerprint to recognise it later."""
        request = super().job_request()
        return dataclasses.replace(
            request, job_tags=[*request.job_tags, spec_tag(request.fingerprint())]
        )

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        identity = TaskIdentity.of(ti)
        check_tags("job_tags", self.job_tags, reserved=len(identity.tags) + 1)
        request = self.job_request()
        request.check(identity.tags)  # before any connection is made
        with NeuroHook(self.neuro_conn_id, retry_budget=self.retry_budget) as hook:
            self._conn_params = hook.params
            job = self._service_job(hook, identity, request)
            self._publish(ti, hook, job)
            self._ours = identity.started(job.tags)
            # Counted from here: replacing an old job first is not the new one's time.
            probe = HealthProbe(
                path=self.health_path,
                statuses=tuple(self.health_statuses),
                auth=self.job_http_auth,
                deadline=time.time() + self.ready_timeout,
                poll_interval=self.poll_interval,
            )
            if self.deferrable:
                self._defer_ready(job.id, probe)
            try:
                service = hook.wait_ready(job.id, probe)
            except ServiceEnded:
                raise  # nothing left to cancel
            except BaseException:
                # A service this task started must not outlive a failed deploy.
                self.on_kill()
                raise
        return self._ready(service)

    def _service_job(
        self, hook: NeuroHook, identity: TaskIdentity, request: JobRequest
    ) -> apolo_sdk.JobDescription:
        """The live job of this name to keep, or a new one (the old one stopped first)."""
        assert request.job_name is not None
        spec = request.job_tags[-1]
        for job in hook.find_jobs((), LIVE, name=request.job_name)[:1]:
            if job.owner != hook.client.config.username:
                # Names are unique in a project, not per user: a colleague's service is
                # neither reused nor stopped.
                raise NeuroJobError(
                    f"job_name: {request.job_name!r} is taken by live job {job.id} of user"
                    f" {job.owner}; deploy under another name"
                )
            same_spec = spec in job.tags
            if same_spec and self.reattach_on_restart and identity.started(job.tags):
                self.log.info("Reattaching to service job %s started by an earlier try", job.id)
                return job
            if same_spec and self.if_exists == "reuse":
                self.log.info("Reusing live job %s: it runs the same job spec", job.id)
                return job
            if self.if_exists == "fail":
                raise NeuroJobError(
                    f"job_name: live job {job.id} is named {request.job_name!r}"
                    " and if_exists='fail'"
                )
            why = "its job spec changed" if self.if_exists == "reuse" else "if_exists='replace'"
            self.log.info("Replacing live job %s (%s)", job.id, why)
            hook.cancel_job(job.id)
            # The name is free once the old job has ended.
            hook.wait_for_job(job.id, FINISHED, self.poll_interval)
        job = hook.submit_job(request, identity)
        self.log.info("Started service job %s (%s)", job.id, job.status.value)
        return job

    def _defer_ready(self, job_id: str, probe: HealthProbe) -> None:
        self.defer(
            trigger=NeuroServiceTrigger(
                job_id=job_id,
                deadline=probe.deadline,
                neuro_conn_id=self.neuro_conn_id,
                health_path=probe.path,
                health_statuses=list(probe.statuses),
                auth=probe.auth,
                poll_interval=probe.poll_interval,
                cancel_on_failure=self._ours and self.cancel_on_kill,
                retry_budget=self.retry_budget,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout,
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any], ours: bool = True, fallbacks: int = 0
    ) -> dict[str, Any]:
        """Resume after the trigger fired: the same errors and XCom as a task that waited
        (a service is never cached, so ``ours`` and ``fallbacks`` play no part here)."""
        return self._ready(ServiceEvent.from_json(event).service_or_raise())

    def _ready(self, service: ServiceInfo) -> dict[str, Any]:
        self.log.info(
            "Service job %s answered %s %.1f s after it started to run: %s (from other"
            " jobs: %s)",
            service.job.id, self.health_path, service.ready_after_s, service.http_url,
            service.internal_url or "-",
        )  # fmt: skip
        return service.xcom()


class NeuroModelRequestOperator(BaseOperator):
    """Send one HTTP request to a served model; its answer goes to XCom.

    :param endpoint: a job name (a live job in the connection's project), a job id, or a
        URL (the ``http_url`` a ``NeuroDeployOperator`` returns, say).
    :param path: the path under the job's URL.
    :param method: the HTTP method.
    :param json: a body sent as JSON.
    :param data: a body sent as it is (a mapping is sent as a form).
    :param headers: more request headers.
    :param auth: send the connection's token (a job with ``job_http_auth`` needs it); it is
        masked in logs.
    :param timeout: seconds for one attempt.
    :param retry_statuses: answers to ask again for within ``retry_budget``, as for a
        connection that fails.
    :param response_check: called with the parsed answer; a false result fails the task.
    :param neuro_conn_id: the ``neuro`` connection.
    :param retry_budget: seconds to keep asking through retry statuses and failed connections.

    XCom ``return_value``: the answer parsed as JSON when it says it is JSON, else its text.
    An answer that is not 2xx fails the task with its status and the start of its body.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "path",
        "json",
        "data",
        "headers",
        "neuro_conn_id",
    )
    template_fields_renderers = {"json": "json", "headers": "json"}
    ui_color = "#fdf3d8"

    def __init__(
        self,
        endpoint: str,
        path: str = "/",
        *,
        method: str = "POST",
        json: Any = None,
        data: str | bytes | Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        timeout: float = 60.0,
        retry_statuses: Sequence[int] = tuple(sorted(RETRY_STATUSES)),
        response_check: Callable[[Any], bool] | None = None,
        neuro_conn_id: str = NeuroHook.default_conn_name,
        retry_budget: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_flag("auth", auth)
        check_number("retry_budget", retry_budget, inclusive=True)
        if json is not None and data is not None:
            raise JobArgumentError("json", "give json or data, not both")
        if response_check is not None and not callable(response_check):
            raise JobArgumentError("response_check", "must be a callable that takes the answer")
        self.endpoint = endpoint
        self.path = path
        self.method = check_method(method)
        self.json = json
        self.data = data
        self.headers = dict(headers or {})
        self.auth = auth
        self.timeout = check_seconds("timeout", timeout)
        self.retry_statuses = sorted(check_statuses("retry_statuses", retry_statuses))
        self.response_check = response_check
        self.neuro_conn_id = neuro_conn_id
        self.retry_budget = retry_budget

    def execute(self, context: Context) -> Any:
        with NeuroHook(self.neuro_conn_id, retry_budget=self.retry_budget) as hook:
            started = time.monotonic()
            answer = hook.request(
                self.endpoint,
                self.path,
                method=self.method,
                json=self.json,
                data=self.data,
                headers=self.headers,
                auth=self.auth,
                timeout=self.timeout,
                retry_statuses=self.retry_statuses,
            )
        took = (time.monotonic() - started) * 1000
        what = f"{self.method} {answer.url}"
        self.log.info("%s: %s in %.0f ms: %s", what, answer.describe(), took, answer.head())
        if not answer.ok:
            raise ServiceRequestError(
                f"{what} answered {answer.describe()}: {answer.head()}", answer.status
            )
        value = answer.value()
        if self.response_check is not None and not self.response_check(value):
            raise ServiceRequestError(
                f"response_check refused the answer of {what}: {answer.head()}", answer.status
            )
        return value


class NeuroModelPredictOperator(NeuroModelRequestOperator):
    """Ask a served model for a prediction: ``request_body`` POSTed to ``path``.

    A mapping or a list is sent as JSON; a string or bytes as they are.
    """

    def __init__(
        self, endpoint: str, request_body: Any, path: str = "/predict", **kwargs: Any
    ) -> None:
        body = {"data": request_body} if isinstance(request_body, (str, bytes)) else {
            "json": request_body
        }  # fmt: skip
        super().__init__(endpoint=endpoint, path=path, method="POST", **body, **kwargs)


class NeuroModelInfoOperator(NeuroModelRequestOperator):
    """Ask a served model what it is: a GET of ``path``."""

    def __init__(self, endpoint: str, path: str = "/info", **kwargs: Any) -> None:
        super().__init__(endpoint=endpoint, path=path, method="GET", **kwargs)


class NeuroUndeployOperator(BaseOperator):
    """Stop a service: cancel its job, found by name (the live one) or by id.

    Works as a teardown task: ``deploy >> predict >> undeploy.as_teardown(setups=deploy)``
    stops the service even when ``predict`` fails.

    :param job_name: the service's name: your live job of that name in the project (also
        one a deploy reused from an earlier run; pass the deploy's ``job_id`` from XCom to
        stop only what this run started).
    :param job_id: the service's job id, instead of a name.
    :param missing_ok: succeed when there is nothing to stop; else fail.
    :param neuro_conn_id: the ``neuro`` connection.
    :param retry_budget: seconds to ride out a platform outage.

    XCom ``return_value``: the ids of the jobs it cancelled.
    """

    template_fields: Sequence[str] = ("job_name", "job_id", "neuro_conn_id")
    ui_color = "#f6e0e0"

    def __init__(
        self,
        *,
        job_name: str | None = None,
        job_id: str | None = None,
        missing_ok: bool = True,
        neuro_conn_id: str = NeuroHook.default_conn_name,
        retry_budget: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_flag("missing_ok", missing_ok)
        check_number("retry_budget", retry_budget, inclusive=True)
        if (job_name is None) == (job_id is None):
            raise JobArgumentError("job_name", "give a job_name or a job_id (one of them)")
        self.job_name = job_name
        self.job_id = job_id
        self.missing_ok = missing_ok
        self.neuro_conn_id = neuro_conn_id
        self.retry_budget = retry_budget

    def execute(self, context: Context) -> list[str]:
        if self.job_name is not None:
            check_name(self.job_name)
        with NeuroHook(self.neuro_conn_id, retry_budget=self.retry_budget) as hook:
            live = self._live_jobs(hook)
            for job in live:
                hook.cancel_job(job.id)
                self.log.info("Cancelled service job %s (%s)", job.id, job.name or "no name")
        if not live:
            what = f"job {self.job_id}" if self.job_id else f"job named {self.job_name!r}"
            if not self.missing_ok:
                raise NeuroJobError(f"no live {what} to stop (missing_ok=False)")
            self.log.info("No live %s: nothing to stop", what)
        return [job.id for job in live]

    def _live_jobs(self, hook: NeuroHook) -> list[apolo_sdk.JobDescription]:
        if self.job_name is not None:
            me = hook.client.config.username
            named = hook.find_jobs((), LIVE, name=self.job_name)
            for job in named:
                if job.owner != me:
                    self.log.warning("Leaving job %s alone: user %s started it", job.id, job.owner)
            return [job for job in named if job.owner == me]
        assert self.job_id is not None
        try:
            job = hook.get_job(self.job_id)
        except apolo_sdk.ResourceNotFound:
            return []
        return [job] if job.status in LIVE else []
