"""A job's HTTP port, reached through the platform at /jobs-http/<job id>/.

A named job is also reached at /jobs-http/<name>--<owner>/, which always leads to the
newest live job of that name: the address a served model keeps across redeploys.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from .auth import is_authorized
from .errors import JobNotFound
from .jobs import JobService
from .records import NAME_OWNER_SEPARATOR, Job
from .settings import Settings

PREFIX = "/jobs-http/"
# Hop-by-hop headers are the proxy's own business (RFC 9110, section 7.6.1).
HOP_HEADERS = frozenset(
    h.lower()
    for h in ("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
              "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length")
)  # fmt: skip


def _forwardable(headers: Mapping[str, str]) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in headers.items():
        if key.lower() not in HOP_HEADERS:
            out.add(key, value)
    return out


class JobHttpProxy:
    def __init__(self, settings: Settings, service: JobService) -> None:
        self._settings = settings
        self._jobs = service
        self._session: aiohttp.ClientSession | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", PREFIX + "{id}/{tail:.*}", self.handle)]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _job(self, segment: str) -> Job:
        name, named, owner = segment.partition(NAME_OWNER_SEPARATOR)
        try:
            if named:
                return self._jobs.named(name, owner)
            return self._jobs.get(segment, self._settings.user)
        except JobNotFound:
            raise web.HTTPNotFound(text="no such job") from None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        job = self._job(request.match_info["id"])
        if job.http_port is None or not job.is_live:
            raise web.HTTPBadGateway(text="the job does not serve HTTP now")
        if job.http_requires_auth and not is_authorized(request, self._settings.token):
            raise web.HTTPUnauthorized(text="Not authenticated")
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = _forwardable(request.headers)
        headers.popall("Authorization", None)  # the platform's token is not the job's business
        if request.content_length is not None:
            # Sent on as a stream, the body would go chunked, and many small servers (Python's
            # http.server among them) read a body only by its Content-Length.
            headers["Content-Length"] = str(request.content_length)
        target = f"http://127.0.0.1:{job.http_port}/{request.match_info['tail']}"
        try:
            async with self._session.request(
                request.method,
                target,
                params=request.query,
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
