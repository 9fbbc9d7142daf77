"""NeuroClient: every platform step the provider takes, as methods of one async object.

It holds a logged-in SDK client and the retry budget, so each operation rides out
transient faults without being told how: find a job from an earlier try, create one
without ever creating two, follow its log without losing or repeating a line, wait for a
status, cancel, and read storage. The hook is its synchronous face; triggers use it as is.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import apolo_sdk
from yarl import URL

from airflow_neuro.client.config_dirs import private_config_dir
from airflow_neuro.client.connection import NeuroConnectionParams, login
from airflow_neuro.client.identity import TaskIdentity
from airflow_neuro.client.retry import Outage, is_transient, retrying
from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.job_request import PreparedJob

T = TypeVar("T")

NAME_TAKEN = re.compile(r"job with name '[^']*' and project '[^']*' already exists: '([^']+)'")
# A cancel is sent while a task is being killed: it must not hold the kill up for long.
CANCEL_BUDGET = 60.0


class NeuroClient:
    """A logged-in platform client with its retry budget bound once.

    ``async with NeuroClient.session(params) as client: await client.status(job_id)``.
    It logs in into a private config directory of its own, removed on close.
    """

    def __init__(
        self,
        sdk: apolo_sdk.Client,
        params: NeuroConnectionParams,
        config_dir: Path,
        retry_budget: float = 300.0,
    ) -> None:
        self.sdk = sdk
        self.params = params
        self.config_dir = config_dir
        self.retry_budget = retry_budget
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    async def connect(
        cls,
        params: NeuroConnectionParams,
        retry_budget: float = 300.0,
        deadline: float | None = None,
    ) -> NeuroClient:
        """Log in (within ``deadline`` seconds, if given); a failed login raises
        ``NeuroConnectionError`` naming the connection and the cause."""
        config_dir = private_config_dir()
        try:
            sdk = await login(params, config_dir, retry_budget, deadline)
        except BaseException:
            shutil.rmtree(config_dir, ignore_errors=True)
            raise
        return cls(sdk, params, config_dir, retry_budget)

    async def close(self) -> None:
        try:
            if self._http is not None:
                await self._http.close()
            await self.sdk.close()
        finally:
            self._http = None
            shutil.rmtree(self.config_dir, ignore_errors=True)

    @classmethod
    @asynccontextmanager
    async def session(
        cls, params: NeuroConnectionParams, retry_budget: float = 300.0
    ) -> AsyncIterator[NeuroClient]:
        """``async with NeuroClient.session(params) as client:`` logs in, and out at the end."""
        client = await cls.connect(params, retry_budget)
        try:
            yield client
        finally:
            await client.close()

    @property
    def config(self) -> apolo_sdk.Config:
        return self.sdk.config

    def http(self) -> aiohttp.ClientSession:
        """A session for jobs' own HTTP ports, apart from the SDK's: those answers are the
        served model's, not the platform API's, and are read and retried differently."""
        if self._http is None or self._http.closed:
            # No cookies kept: one service's cookies must not go to the next (on the local
            # platform every job's URL is on the same host).
            self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._http

    async def retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """``await call()`` through transient faults, within the budget: idempotent calls only."""
        return await retrying(call, what=what, budget=self.retry_budget)

    # -- jobs -----------------------------------------------------------------------------
    async def status(self, job_id: str) -> apolo_sdk.JobDescription:
        return await self.retrying(lambda: self.sdk.jobs.status(job_id), f"the status of {job_id}")

    async def find_jobs(
        self,
        tags: Iterable[str],
        statuses: Iterable[apolo_sdk.JobStatus] = (),
        name: str | None = None,
    ) -> list[apolo_sdk.JobDescription]:
        """Jobs of this project carrying every tag (and named ``name``), newest first."""
        wanted, states = set(tags), set(statuses)
        # The SDK lists every project of the org by default: a job of the same DAG or cache
        # key in another project (staging and prod, say) is not this one's.
        where: dict[str, Any] = {"name": name} if name else {}
        if self.config.project_name:
            where["project_names"] = [self.config.project_name]

        async def listed() -> list[apolo_sdk.JobDescription]:
            async with self.sdk.jobs.list(
                tags=wanted, statuses=states, reverse=True, **where
            ) as jobs:
                return [job async for job in jobs]

        return await self.retrying(listed, "the job list")

    async def submit_once(
        self, prepared: PreparedJob, identity: TaskIdentity, adopt_tag: str | None = None
    ) -> apolo_sdk.JobDescription:
        """Create the job; after an answer that may have been lost, look for it before
        trying again, so that a job is never created twice. When the name is taken by a
        live job carrying ``adopt_tag`` (the same cached work), that job is the answer."""

        async def create() -> apolo_sdk.JobDescription:
            try:
                return await prepared.submit(self.sdk)
            except apolo_sdk.IllegalArgumentError as e:
                taken = NAME_TAKEN.search(str(e))
                if taken is None:
                    raise
                # Ours from an earlier attempt: use it. Someone else's: say so by name.
                other = await self.status(taken.group(1))
                if identity.started(other.tags) or (adopt_tag and adopt_tag in other.tags):
                    return other
                raise JobArgumentError(
                    "job_name",
                    f"{prepared.name!r} is taken by live job {other.id}, not started by this task",
                ) from None
            except Exception as e:
                if not is_transient(e):
                    raise
                landed = await self.find_jobs(identity.tags)
                if landed:
                    return landed[0]
                raise

        return await self.retrying(create, "creating the job")

    async def wait_for(
        self,
        job_id: str,
        wanted: Iterable[apolo_sdk.JobStatus],
        poll_interval: float,
        first_delay: float = 0.05,
    ) -> apolo_sdk.JobDescription:
        """Poll until the job is in one of ``wanted`` or has finished: soon at first, then less."""
        states = set(wanted)
        delay = first_delay
        while True:
            job = await self.status(job_id)
            if job.status in states or job.status.is_finished:
                return job
            await asyncio.sleep(delay)
            delay = min(poll_interval, delay * 1.5)

    async def log_lines(self, job_id: str) -> AsyncIterator[str]:
        """The job's log line by line as it comes, until the job ends.

        A stream that breaks is opened again and the bytes already read are skipped, so no
        line is lost or repeated. The log is complete only when the server closed the
        stream itself and the job has ended; after any resumption the finished log is read
        once more to be sure of its tail.
        """
        lines = _LineSplitter()
        resumed = False
        while True:
            outage = Outage(f"the log of {job_id}", self.retry_budget, progress=lines.received)
            while True:
                skip = lines.received
                try:
                    async for chunk in self._log_stream(job_id):
                        if skip:
                            drop = min(skip, len(chunk))
                            chunk, skip = chunk[drop:], skip - drop
                        for line in lines.feed(chunk):
                            yield line
                    break
                except Exception as e:
                    await outage.ride_out(e, progress=lines.received)
                    resumed = True
            job = await self.status(job_id)
            if not job.status.is_finished:
                resumed = True  # closed under a live job: follow it on
                continue
            if not resumed:
                break
            resumed = False  # one more pass over the finished log, to be sure of its tail
        for line in lines.finish():
            yield line

    async def _log_stream(self, job_id: str) -> AsyncIterator[bytes]:
        """The platform's log WebSocket, read here rather than through ``jobs.monitor``.

        The SDK ends a cut connection as quietly as a finished log, and a cut that falls just
        before the job ends then looks like the end of its log. Here only the server's
        closing frame ends the stream; anything else raises ``LogStreamCut``, a transient
        fault that resumes it.
        """
        url = self.config.monitoring_url / job_id / "log_ws"
        headers = {"Authorization": f"Bearer {await self.config.token()}"}
        try:
            ws = await self.http().ws_connect(url, headers=headers, heartbeat=30)
        except aiohttp.WSServerHandshakeError as e:
            raise _handshake_error(e, job_id) from None
        async with ws:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.BINARY:
                    yield message.data
                elif message.type == aiohttp.WSMsgType.CLOSE:
                    return
                elif message.type == aiohttp.WSMsgType.ERROR:
                    raise LogStreamCut(f"the log stream of {job_id} failed: {message.data}")
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    raise LogStreamCut(f"the log stream of {job_id} was cut")
                else:
                    raise LogStreamCut(f"the log stream of {job_id} sent {message.type.name}")

    async def log_tail(self, job_id: str, lines: int = 20) -> list[str]:
        """The last lines of a finished job's log (a live job's is read until it ends)."""
        return list(collections.deque([line async for line in self.log_lines(job_id)], lines))

    async def cancel(self, job_id: str) -> None:
        budget = min(self.retry_budget, CANCEL_BUDGET)
        await retrying(lambda: self.sdk.jobs.kill(job_id), what=f"cancelling {job_id}",
                       budget=budget)  # fmt: skip

    def job_page_url(self, job_id: str) -> str:
        """Where a person sees the job: the connection's template, else its API resource."""
        config = self.config
        template = self.params.job_url_template or str(config.api_url / "jobs") + "/{job_id}"
        return template.format(
            job_id=job_id,
            cluster=config.cluster_name,
            org=config.org_name,
            project=config.project_name,
        )

    # -- storage --------------------------------------------------------------------------
    def storage_uri(self, path: str) -> URL:
        """``storage:`` URIs as they are; other paths are taken from the project's root."""
        return URL(path if path.startswith("storage:") else "storage:" + path)

    async def stat(self, path: str | URL) -> apolo_sdk.FileStatus:
        """A file's or directory's status; ``apolo_sdk.ResourceNotFound`` when missing."""
        uri = path if isinstance(path, URL) else self.storage_uri(path)
        return await self.retrying(lambda: self.sdk.storage.stat(uri), f"the status of {uri}")

    async def exists(self, path: str) -> bool:
        """Whether a file or directory is on storage (``models/m.pth`` or a ``storage:`` URI)."""
        try:
            await self.stat(path)
        except apolo_sdk.ResourceNotFound:
            return False
        return True

    async def read_bytes(self, path: str) -> bytes:
        """A whole file from storage; ``apolo_sdk.ResourceNotFound`` when it is missing."""
        uri = self.storage_uri(path)

        async def read() -> bytes:
            async with self.sdk.storage.open(uri) as chunks:
                return b"".join([chunk async for chunk in chunks])

        return await self.retrying(read, f"reading {uri}")

    async def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole file to storage (its directory made first), replacing any file there.

        Sent again whole after a transient fault: a partial file is overwritten, never kept.
        """
        uri = self.storage_uri(path)

        async def write() -> None:
            await self.sdk.storage.mkdir(uri.parent, parents=True, exist_ok=True)
            await self.sdk.storage.create(uri, data)

        await self.retrying(write, f"writing {uri}")


async def cancel_job(params: NeuroConnectionParams, job_id: str, budget: float = 30.0) -> None:
    """Cancel a job with a login of its own, for callers that cannot use a client's loop."""
    async with NeuroClient.session(params, retry_budget=budget) as client:
        await client.cancel(job_id)


class LogStreamCut(aiohttp.ClientConnectionError):
    """A log stream that ended without the server's closing frame: resumed as any fault."""


# The SDK's classes for the statuses it maps, so callers see the same errors as from it.
_HANDSHAKE_ERRORS: dict[int, type[Exception]] = {
    400: apolo_sdk.IllegalArgumentError,
    401: apolo_sdk.AuthenticationError,
    403: apolo_sdk.AuthorizationError,
    404: apolo_sdk.ResourceNotFound,
    502: apolo_sdk.BadGateway,
    503: apolo_sdk.ServerNotAvailable,
}


def _handshake_error(error: aiohttp.WSServerHandshakeError, job_id: str) -> Exception:
    told = error.headers.get("X-Error") if error.headers is not None else None
    reason = told or f"{error.status} {error.message}"
    if error.status == 504:
        return LogStreamCut(f"the log stream of {job_id}: {reason}")
    return _HANDSHAKE_ERRORS.get(error.status, apolo_sdk.ClientError)(reason)


class _LineSplitter:
    """Bytes in, whole lines out: a UTF-8 character split across chunks is joined first."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self.received = 0

    def feed(self, chunk: bytes) -> list[str]:
        self.received += len(chunk)
        return self._split(self._decoder.decode(chunk))

    def finish(self) -> list[str]:
        """The lines still held, the last one even without its newline."""
        lines = self._split(self._decoder.decode(b"", final=True))
        tail, self._pending = self._pending, ""
        return [*lines, tail] if tail else lines

    def _split(self, text: str) -> list[str]:
        *lines, self._pending = (self._pending + text).split("\n")
        return [line.rstrip("\r") for line in lines]
