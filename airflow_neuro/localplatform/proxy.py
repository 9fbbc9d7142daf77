"""A job's HTTP port, reached through the platform at /jobs-http/<job id>/.

A named job is also reached at /jobs-http/<name>--<owner>/, which always leads to the
newest live job of that name: the address a served model keeps across redeploys.

The platform's token never goes on to the job, wherever the caller put it. Jobs share the
machine's network, so a request is forwarded only while the job's own processes hold the
port: a job cannot offer the public a way in to some other local service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, MultiDict

from .auth import TOKEN_QUERY, WS_TOKEN_PROTOCOL, is_authorized, not_authenticated
from .errors import JobNotFound
from .jobs import JobService
from .ports import listened_by_namespace, own_pid_namespace
from .records import NAME_OWNER_SEPARATOR, Job
from .settings import Settings

PREFIX = "/jobs-http/"
# Hop-by-hop headers are the proxy's own business (RFC 9110, section 7.6.1).
HOP_HEADERS = frozenset(
    h.lower()
    for h in ("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
              "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length")
)  # fmt: skip
# How long a job's hold on its port, once seen, is taken as still true: a look costs a
# walk over every process, and a page load brings a burst of requests.
OWNER_TTL_SECONDS = 1.0


def _forwardable(headers: Mapping[str, str]) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        if key.lower() not in HOP_HEADERS:
            out.add(key, value)
    return out


def _without_token_cookies(header: str, token: str) -> str:
    # A browser sends the token as a cookie only if something set it for this host; the
    # cookie's name is then unknown, its value is not.
    kept = [c for c in header.split(";") if c.partition("=")[2].strip().strip('"') != token]
    return ";".join(kept).strip()


def _without_token_protocols(header: str) -> str:
    # Browsers cannot set headers on a WebSocket, so they carry the token as a subprotocol.
    kept = [p.strip() for p in header.split(",")]
    return ", ".join(p for p in kept if p and not p.startswith(WS_TOKEN_PROTOCOL))


def request_headers(headers: Mapping[str, str], token: str) -> CIMultiDict[str]:
    """The caller's headers for the job: without hop-by-hop headers and without the token."""
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in _forwardable(headers).items():
        name = key.lower()
        if name == "authorization":
            continue  # whatever it holds, it was meant for the platform
        if name == "cookie":
            value = _without_token_cookies(value, token)
            if not value:
                continue
        elif name == "sec-websocket-protocol":
            value = _without_token_protocols(value)
            if not value:
                continue
        if token in value:
            # Anywhere else too: a Referer, say, names the page the token was given to.
            continue
        out.add(key, value)
    return out


def request_query(query: Mapping[str, str], token: str) -> MultiDict[str]:
    """The caller's query for the job, without the token."""
    return MultiDict(
        (key, value) for key, value in query.items() if key != TOKEN_QUERY and token not in value
    )


def _open_to_anyone(job: Job) -> bool:
    return job.is_live and job.http_port is not None and not job.http_requires_auth


class JobHttpProxy:
    def __init__(self, settings: Settings, service: JobService) -> None:
        self._settings = settings
        self._jobs = service
        self._session: aiohttp.ClientSession | None = None
        self._own_pid_namespace = own_pid_namespace()
        # (job id, port) -> until when the job's processes are taken to hold the port.
        self._held_until: dict[tuple[str, int], float] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", PREFIX + "{id}/{tail:.*}", self.handle)]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _find(self, segment: str) -> Job | None:
        name, named, owner = segment.partition(NAME_OWNER_SEPARATOR)
        try:
            if named:
                return self._jobs.named(name, owner)
            return self._jobs.get(segment, self._settings.user)
        except JobNotFound:
            return None

    def _job(self, segment: str, authorized: bool) -> Job:
        job = self._find(segment)
        if not authorized and (job is None or not _open_to_anyone(job)):
            # One answer for every job the caller may not use: telling an unknown job from
            # a finished or a private one would let anyone list the jobs' names.
            raise not_authenticated()
        if job is None:
            raise web.HTTPNotFound(text="no such job")
        if job.http_port is None or not job.is_live:
            raise web.HTTPBadGateway(text="the job does not serve HTTP now")
        return job

    async def _check_holder(self, job: Job, port: int) -> None:
        """Answers 502 unless the job's own processes are what listens on ``port``."""
        key = (job.id, port)
        now = time.monotonic()
        if self._held_until.get(key, 0.0) > now:
            return
        pid_ns = self._jobs.pid_namespace(job.id)
        # In the platform's own namespace, the job's processes could not be told from any
        # other, the platform's included: never taken to be the job's alone.
        if (
            pid_ns is None
            or pid_ns == self._own_pid_namespace
            or not await asyncio.to_thread(listened_by_namespace, port, pid_ns)
        ):
            raise web.HTTPBadGateway(text=f"the job's own processes do not listen on port {port}")
        self._held_until = {k: t for k, t in self._held_until.items() if t > now}
        self._held_until[key] = now + OWNER_TTL_SECONDS

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = self._settings.token
        authorized = is_authorized(request, token)
        job = self._job(request.match_info["id"], authorized)
        assert job.http_port is not None  # _job returns only jobs that serve
        await self._check_holder(job, job.http_port)
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = request_headers(request.headers, token)
        if request.content_length is not None:
            # Sent on as a stream, the body would go chunked, and many small servers (Python's
            # http.server among them) read a body only by its Content-Length.
            headers["Content-Length"] = str(request.content_length)
        target = f"http://127.0.0.1:{job.http_port}/{request.match_info['tail']}"
        try:
            async with self._session.request(
                request.method,
                target,
                params=request_query(request.query, token),
                headers=headers,
                data=request.content if request.body_exists else None,
                allow_redirects=False,
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status, headers=_forwardable(upstream.headers)
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientConnectionError as e:
            raise web.HTTPBadGateway(
                text=f"the job's port {job.http_port} did not answer: {e}"
            ) from None
