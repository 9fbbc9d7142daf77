"""Served models: jobs with an HTTP port, waited on until they answer, then asked things.

A job that is ``running`` is not yet a service that answers: a model server loads its
weights first. ``Services.wait_ready`` polls the job's status and its health URL together,
so it tells a server that is still starting from one that ended, refuses the token, or
never listens; ``Services.request`` sends one request to a job by name, id or URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import apolo_sdk

from airflow_neuro.client.http import IDEMPOTENT, HttpAnswer, RequestSpec, join_url, same_site
from airflow_neuro.client.neuro import NeuroClient
from airflow_neuro.client.retry import RETRY_STATUSES, Outage
from airflow_neuro.client.summary import LIVE, JobSummary
from airflow_neuro.exceptions import (
    JobArgumentError,
    NeuroJobError,
    PlatformUnavailable,
    ServiceEnded,
    ServiceNotReady,
    ServiceRefused,
    ServiceRequestError,
)

REFUSED = frozenset({401, 403})
# One health check may not take longer than this, however long the poll interval.
PROBE_TIMEOUT = 10.0
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class HealthProbe:
    """How to tell that a service is ready: which path answers which statuses, and when
    to give up (``deadline``, in ``time.time()`` seconds, so it survives a restart)."""

    path: str = "/"
    statuses: tuple[int, ...] = (200,)
    auth: bool = True
    deadline: float = 0.0
    poll_interval: float = 10.0


@dataclass(frozen=True)
class ServiceInfo:
    """A service that answered: its job, and the URLs to reach it from outside and inside."""

    job: JobSummary
    name: str | None
    http_url: str
    internal_url: str | None
    ready_after_s: float

    def xcom(self) -> dict[str, Any]:
        """The job's XCom, plus ``name``, ``http_url``, ``internal_url``, ``ready_after_s``."""
        return {
            **self.job.xcom(),
            "name": self.name,
            "http_url": self.http_url,
            "internal_url": self.internal_url,
            "ready_after_s": round(self.ready_after_s, 3),
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "job": self.job.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> ServiceInfo:
        if not isinstance(data, Mapping) or not isinstance(data.get("http_url"), str):
            raise ValueError(f"not a service: {data!r}")
        return cls(
            job=JobSummary.from_json(data.get("job")),
            name=data.get("name"),
            http_url=data["http_url"],
            internal_url=data.get("internal_url"),
            ready_after_s=float(data.get("ready_after_s", 0.0)),
        )


def internal_url(job: apolo_sdk.JobDescription) -> str | None:
    """Where other jobs reach the service: the named host when there is one, as it stays
    the same when the service is redeployed."""
    host = job.internal_hostname_named or job.internal_hostname
    http = job.container.http
    if not host or http is None:
        return None
    return f"http://{host}:{http.port}/"


def _since_start(job: apolo_sdk.JobDescription) -> float:
    """Seconds since the job started to run, by the platform's clock: the same figure
    whether the worker or the triggerer (which may pick the wait up late) noticed."""
    started = job.history.started_at
    if started is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - started).total_seconds())


class _Retryable(Exception):
    """An answer with one of the retry statuses: asked again while the budget lasts."""

    def __init__(self, answer: HttpAnswer) -> None:
        super().__init__(f"{answer.url} answered {answer.describe()}")
        self.answer = answer


def _worth_repeating(method: str) -> Callable[[BaseException], bool]:
    """A retry status, or a connection that never reached the server, is asked again; a
    request that may have arrived (a timeout, a dropped connection) only when the method
    is idempotent: a slow POST /predict is not sent again and again."""

    def worth_it(error: BaseException) -> bool:
        if isinstance(error, (_Retryable, aiohttp.ClientConnectorError)):
            return True
        arrived = isinstance(error, (aiohttp.ClientConnectionError, TimeoutError))
        return arrived and method in IDEMPOTENT

    return worth_it


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class Services:
    """The served-model side of a ``NeuroClient``."""

    def __init__(self, client: NeuroClient) -> None:
        self.client = client

    def _headers(self, auth: bool, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if auth:
            headers["Authorization"] = f"Bearer {self.client.params.token}"
        return headers

    async def base_url(self, endpoint: str, auth: bool = True) -> str:
        """The URL of ``endpoint``: an ``http(s)://`` URL as it is, else a job id or the name
        of a live job in this project, looked up. With ``auth``, a URL must be the
        platform's: the token is never sent anywhere else."""
        if not isinstance(endpoint, str) or not endpoint.strip():
            raise JobArgumentError(
                "endpoint", f"must be a job name, a job id or a URL: {endpoint!r}"
            )
        endpoint = endpoint.strip()
        if endpoint.startswith(("http://", "https://")):
            api_url = str(self.client.config.api_url)
            if auth and not same_site(endpoint, api_url):
                raise JobArgumentError(
                    "endpoint",
                    f"{endpoint} is not a URL of the platform at {api_url}, and the"
                    " platform's token is sent to no other host: use auth=False to call it"
                    " without the token",
                )
            return endpoint
        if endpoint.startswith("job-"):
            try:
                job = await self.client.status(endpoint)
            except apolo_sdk.ResourceNotFound:
                raise NeuroJobError(f"endpoint: there is no job {endpoint}") from None
        else:
            live = await self.client.find_jobs((), LIVE, name=endpoint)
            if not live:
                raise NeuroJobError(
                    f"endpoint: no live job is named {endpoint!r} in project"
                    f" {self.client.config.project_name}"
                )
            job = live[0]
        if job.http_url is None or not str(job.http_url):
            raise NeuroJobError(
                f"endpoint: job {job.id} serves no HTTP port (start it with job_http_port)"
            )
        return str(job.http_url)

    async def send(self, url: str, spec: RequestSpec, auth: bool) -> HttpAnswer:
        """One request, read whole; no retries."""
        async with self.client.http().request(
            spec.method,
            url,
            json=spec.json,
            data=spec.data,
            headers=self._headers(auth, spec.headers),
            timeout=aiohttp.ClientTimeout(total=spec.timeout),
        ) as response:
            body = await response.read()
            return HttpAnswer(
                url=url,
                status=response.status,
                reason=response.reason or "",
                content_type=response.content_type,
                charset=response.charset,
                body=body,
            )

    async def request(
        self,
        endpoint: str,
        path: str,
        spec: RequestSpec,
        auth: bool = True,
        retry_statuses: Collection[int] = RETRY_STATUSES,
    ) -> HttpAnswer:
        """Send ``spec`` to ``path`` of ``endpoint``; answers in ``retry_statuses`` and
        connections that fail are tried again within the retry budget. The last answer is
        returned as it is, whatever its status: the caller decides what fails."""
        url = join_url(await self.base_url(endpoint, auth), path)
        what = f"{spec.method} {url}"
        budget = self.client.retry_budget
        outage = Outage(what, budget, transient=_worth_repeating(spec.method))
        while True:
            try:
                answer = await self.send(url, spec, auth)
                if answer.status in retry_statuses:
                    raise _Retryable(answer)
                return answer
            except Exception as e:
                try:
                    await outage.ride_out(e)
                except PlatformUnavailable:
                    if isinstance(e, _Retryable):
                        return e.answer
                    raise ServiceRequestError(
                        f"{what}: no answer in the retry budget ({budget:.0f} s); last error:"
                        f" {_describe(e)}"
                    ) from e
                except (aiohttp.ClientError, TimeoutError):
                    raise ServiceRequestError(
                        f"{what}: {_describe(e)} (not sent again: it may have reached the server)"
                    ) from e

    async def wait_ready(self, job_id: str, probe: HealthProbe) -> ServiceInfo:
        """Wait until the job's ``probe.path`` answers one of ``probe.statuses``.

        Fails with ``ServiceEnded`` (with the log's last lines) when the job ends first,
        ``ServiceRefused`` at once on 401 or 403, and ``ServiceNotReady`` at the deadline.
        502, 503, 504, refused connections and other statuses mean "not ready yet".
        """
        delay = 0.05
        last = "no health check was sent: the job never ran"
        while True:
            job = await self.client.status(job_id)
            if job.status.is_finished:
                raise await self._ended(job)
            if job.status == apolo_sdk.JobStatus.RUNNING:
                if job.http_url is None or not str(job.http_url):
                    raise NeuroJobError(f"job {job.id} serves no HTTP port", JobSummary.of(job))
                url = join_url(str(job.http_url), probe.path)
                answer, last = await self._probe(url, probe)
                if answer is not None and answer.status in probe.statuses:
                    return ServiceInfo(
                        job=JobSummary.of(job),
                        name=job.name,
                        http_url=str(job.http_url),
                        internal_url=internal_url(job),
                        ready_after_s=_since_start(job),
                    )
                if answer is not None and answer.status in REFUSED:
                    raise ServiceRefused(
                        f"{url} answered {answer.describe()}: "
                        + (
                            "the platform or the server refused the connection's token"
                            if probe.auth
                            else "the server wants credentials (job_http_auth is off)"
                        ),
                        JobSummary.of(job),
                    )
            else:
                last = f"the job is {job.status.value}"
            now = time.time()
            if now >= probe.deadline:
                raise self._not_ready(job, probe, last)
            await asyncio.sleep(min(delay, probe.deadline - now))
            delay = min(probe.poll_interval, delay * 1.5)

    async def _probe(self, url: str, probe: HealthProbe) -> tuple[HttpAnswer | None, str]:
        spec = RequestSpec("GET", timeout=PROBE_TIMEOUT)
        try:
            answer = await self.send(url, spec, probe.auth)
        except (aiohttp.ClientError, TimeoutError) as e:
            return None, f"GET {url}: {type(e).__name__}: {e}".rstrip(": ")
        return answer, f"GET {url} answered {answer.describe()}: {answer.head()[:200]}"

    async def _ended(self, job: apolo_sdk.JobDescription) -> ServiceEnded:
        summary = JobSummary.of(job)
        try:
            tail = await self.client.log_tail(job.id, LOG_TAIL_LINES)
            log = "\n".join(f"  {line}" for line in tail) if tail else "  (the log is empty)"
        except Exception as e:  # the verdict stands without the log
            log = f"  (the log could not be read: {type(e).__name__}: {e})"
        return ServiceEnded(
            f"the service ended before it answered: {summary.describe()}\n"
            f"last lines of its log:\n{log}",
            summary,
        )

    def _not_ready(
        self, job: apolo_sdk.JobDescription, probe: HealthProbe, last: str
    ) -> ServiceNotReady:
        http = job.container.http
        port = http.port if http is not None else "<port>"
        statuses = ", ".join(str(s) for s in probe.statuses)
        return ServiceNotReady(
            f"job {job.id} did not answer {probe.path} with {statuses} in time (last: {last})."
            f" Check that the server listens on 0.0.0.0:{port}, not 127.0.0.1, and that"
            f" {probe.path} answers {statuses} once it is ready",
            JobSummary.of(job),
        )
