"""HTTP handlers for /api/v1/jobs: the job API and the monitoring (log) API at one prefix."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from .errors import BadRequest
from .jobs import JobService
from .json_body import read_json
from .logs import JobLog
from .params import query_flag
from .records import ALL_STATUSES, Job
from .settings import Settings
from .validation import parse_job_request, parse_life_span_bump

LOG_WS_PROTOCOL = "logs.apolo.us"


def _parse_time(value: str, key: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{key}: invalid ISO 8601 time {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        raise BadRequest(
            f"{key}: {value!r} is out of range; times must fall in the years 1 to 9999 in UTC"
        ) from None


class JobsApi:
    def __init__(self, settings: Settings, service: JobService) -> None:
        self._settings = settings
        self._jobs = service
        self._cutter = settings.faults.cutter()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/jobs", self.create),
            web.get("/api/v1/jobs", self.list),
            web.get("/api/v1/jobs/capacity", self.capacity),
            web.get("/api/v1/jobs/{id}", self.get),
            web.delete("/api/v1/jobs/{id}", self.cancel),
            web.put("/api/v1/jobs/{id}/max_run_time_minutes", self.bump_life_span),
            web.get("/api/v1/jobs/{id}/log_ws", self.log_ws),
            web.get("/api/v1/jobs/{id}/log", self.log_text),
        ]

    def _base(self, request: web.Request) -> str:
        return str(request.url.origin())

    def _owner(self, request: web.Request) -> str:
        return self._settings.user

    def _job(self, request: web.Request) -> Job:
        return self._jobs.get(request.match_info["id"], self._owner(request))

    async def create(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        job = parse_job_request(
            body,
            from_preset="from_preset" in request.query,
            settings=self._settings,
            owner=self._owner(request),
        )
        self._jobs.create(job)
        return web.json_response(job.to_api(self._base(request)), status=202)

    async def get(self, request: web.Request) -> web.Response:
        job = self._job(request)
        return web.json_response(job.to_api(self._base(request)))

    async def list(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        statuses = q.getall("status", [])
        bad = sorted(set(statuses) - ALL_STATUSES)
        if bad:
            raise BadRequest(f"status: unknown status {bad[0]!r}")
        limit = None
        if "limit" in q:
            try:
                limit = int(q["limit"])
            except ValueError:
                raise BadRequest("limit: value is not an integer") from None
            if limit < 0:
                raise BadRequest("limit: value should be an integer of at least 0")
        clusters = q.getall("cluster_name", [])
        orgs = [o for o in q.getall("org_name", []) if o != "NO_ORG"]
        foreign = (clusters and self._settings.cluster not in clusters) or (
            orgs and self._settings.org not in orgs
        )
        # Jobs being dropped or with removed logs do not exist here.
        dropped = query_flag(request, "being_dropped") or query_flag(request, "logs_removed")
        jobs = (
            []
            if foreign or dropped
            else self._jobs.query(
                statuses=statuses,
                name=q.get("name") or None,
                tags=q.getall("tag", []),
                owners=q.getall("owner", []),
                projects=q.getall("project_name", []),
                since=_parse_time(q["since"], "since") if "since" in q else None,
                until=_parse_time(q["until"], "until") if "until" in q else None,
                reverse=query_flag(request, "reverse"),
                limit=limit,
            )
        )
        base = self._base(request)
        if "application/x-ndjson" not in request.headers.get("Accept", ""):
            return web.json_response({"jobs": [job.to_api(base) for job in jobs]})
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for job in jobs:
            await response.write(json.dumps(job.to_api(base)).encode() + b"\n")
        await response.write_eof()
        return response

    async def capacity(self, request: web.Request) -> web.Response:
        # One machine: each preset reports room for as many jobs as its CPUs fit.
        cpus = os.cpu_count() or 1
        room = {p.name: max(1, int(cpus // p.cpu)) for p in self._settings.presets}
        return web.json_response(room)

    async def cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        self._jobs.cancel(job.id, self._owner(request))
        return web.Response(status=204)

    async def bump_life_span(self, request: web.Request) -> web.Response:
        self._job(request)  # an unknown job is the answer before a bad body
        body = await read_json(request)
        # The job as it is now, after the wait for the body: nothing is awaited from here to
        # the bump, so the life span the sum is checked against is the one bumped.
        job = self._job(request)
        minutes = parse_life_span_bump(body, job.max_run_time_minutes)
        self._jobs.bump_life_span(job.id, self._owner(request), minutes)
        return web.Response(status=204)

    def _log_source(self, request: web.Request) -> AsyncIterator[bytes]:
        job = self._job(request)
        q = request.query
        since = _parse_time(q["since"], "since") if "since" in q else None
        source: JobLog = self._jobs.log(job.id, self._owner(request))
        return source.read(since=since, timestamps=query_flag(request, "timestamps"))

    async def log_ws(self, request: web.Request) -> web.WebSocketResponse:
        chunks = self._log_source(request)
        ws = web.WebSocketResponse(protocols=(LOG_WS_PROTOCOL,), heartbeat=30)
        await ws.prepare(request)

        async def send() -> None:
            async for data in chunks:
                # Binary frames only: the SDK treats a text frame as a protocol error.
                await ws.send_bytes(data)
                if self._cutter.cut_now() and request.transport is not None:
                    request.transport.abort()  # an injected fault: the connection drops
                    return

        sender = asyncio.ensure_future(send())
        # The client may go away while the job is quiet: stop following then.
        closed_by_client = asyncio.ensure_future(ws.receive())
        try:
            await asyncio.wait({sender, closed_by_client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, closed_by_client):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
            await ws.close()
        return ws

    async def log_text(self, request: web.Request) -> web.StreamResponse:
        chunks = self._log_source(request)
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for data in chunks:
            await response.write(data)
        await response.write_eof()
        return response
