"""The job HTTP proxy as a boundary: the token stays out of jobs, a job serves only its own
port, and callers without the token cannot tell one job they may not use from another."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import apolo_sdk
import pytest
from aiohttp import web

from airflow_neuro.localplatform import LocalPlatform, sandbox

from ..conftest import free_port
from .helpers import start, wait_for_status

pytestmark = pytest.mark.skipif(sandbox.bwrap_binary() is None, reason="bubblewrap missing")

# Binds 127.0.0.1:argv[1] as soon as the port is free, then answers every GET with what it
# was sent: {"home", "path", "headers": [[name, value], ...]}.
ECHO = """
import http.server, json, os, sys, time

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen = {"home": os.environ["HOME"], "path": self.path, "headers": self.headers.items()}
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

while True:
    try:
        server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
        break
    except OSError:
        time.sleep(0.05)
server.serve_forever()
"""


def echo(port: int) -> str:
    # Given inline: a job sees a /tmp of its own, not the test's files.
    assert "'" not in ECHO
    return f"{sys.executable} -c '{ECHO}' {port}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def served(
    http: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[str, dict[str, Any]]:
    """The job's raw answer and its JSON, once its server holds the port (502 until then)."""
    for _ in range(200):
        async with http.get(url, **kwargs) as resp:
            text = await resp.text()
            if resp.status == 200:
                return text, json.loads(text)
            assert resp.status == 502, text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def seen_header(seen: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in seen["headers"] if key.lower() == name.lower()]


@asynccontextmanager
async def serving(text: str, port: int) -> AsyncIterator[None]:
    """A service outside any job, on 127.0.0.1:``port``."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=text)

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield
    finally:
        await runner.cleanup()


async def test_the_token_reaches_the_job_from_none_of_the_places_it_may_be_sent(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    token = platform.settings.token
    port = free_port()
    job = await start(client, echo(port), http=apolo_sdk.HTTPPort(port, requires_auth=True))
    url = f"{platform.base_url}/jobs-http/{job.id}/predict"
    # Each way of sending the token the platform accepts, beside things that are the job's.
    ways: list[dict[str, Any]] = [
        {"headers": bearer(token)},
        {"params": {"neuro-auth-token": token}},
        {"headers": {"Sec-WebSocket-Protocol": f"chat.v1, bearer.apolo.us-{token}"}},
    ]
    async with aiohttp.ClientSession() as http:
        for way in ways:
            headers = {
                "Cookie": f"theme=dark; dat={token}; lang=en",
                "Referer": f"{platform.base_url}/jobs-http/{job.id}/?neuro-auth-token={token}",
                "X-Model": "m1",
                **way.get("headers", {}),
            }
            params = {"x": "1", **way.get("params", {})}
            text, seen = await served(http, url, headers=headers, params=params)
            assert token not in text, way
            path = urlsplit(seen["path"])
            assert (path.path, parse_qsl(path.query)) == ("/predict", [("x", "1")]), way
            assert seen_header(seen, "Cookie") == ["theme=dark; lang=en"], way
            assert seen_header(seen, "X-Model") == ["m1"], way
            assert seen_header(seen, "Authorization") == []
            assert seen_header(seen, "Referer") == []
            expected = ["chat.v1"] if "Sec-WebSocket-Protocol" in headers else []
            assert seen_header(seen, "Sec-WebSocket-Protocol") == expected, way
    await client.jobs.kill(job.id)


async def test_a_public_job_is_reached_only_through_a_port_its_own_processes_hold(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    secret = f"secret-{uuid.uuid4()}"
    port = free_port()
    async with serving(secret, port):
        # The job's server waits for the port, which a service outside the job holds.
        job = await start(client, echo(port), http=apolo_sdk.HTTPPort(port, False))
        await wait_for_status(client, job.id, {apolo_sdk.JobStatus.RUNNING})
        url = f"{platform.base_url}/jobs-http/{job.id}/"
        async with aiohttp.ClientSession() as http:
            for headers in ({}, bearer(platform.settings.token)):
                async with http.get(url, headers=headers) as resp:
                    text = await resp.text()
                    assert resp.status == 502
                    assert secret not in text
                    assert f"the job's own processes do not listen on port {port}" in text
    # The service has gone: the job's own server takes the port, and the public reaches it.
    async with aiohttp.ClientSession() as http:
        _, seen = await served(http, url)
    assert seen["home"] == str(platform.settings.jobs_dir / job.id / "home")
    await client.jobs.kill(job.id)


async def test_callers_without_the_token_cannot_tell_jobs_apart(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    finished = await start(client, "true", name="gone", http=apolo_sdk.HTTPPort(free_port()))
    await wait_for_status(client, finished.id)
    portless = await start(client, "sleep 30", name="quiet")
    port = free_port()
    private = await start(
        client, echo(port), name="private", http=apolo_sdk.HTTPPort(port, requires_auth=True)
    )
    base = f"{platform.base_url}/jobs-http"
    segments = [
        f"job-{uuid.uuid4()}",  # no such job
        "never--local",  # no job ever had the name
        finished.id,
        "gone--local",
        portless.id,
        "quiet--local",
        private.id,
        "private--local",
    ]
    async with aiohttp.ClientSession() as http:
        # The private job serves: only the token stands in the way.
        await served(http, f"{base}/{private.id}/", headers=bearer(platform.settings.token))
        answers = set()
        for segment in segments:
            for headers in ({}, bearer("not-the-token")):
                async with http.get(f"{base}/{segment}/x", headers=headers) as resp:
                    answers.add((resp.status, resp.content_type, await resp.text()))
        assert answers == {(401, "text/plain", "Not authenticated")}

        # The token's holder is told what is wrong.
        for segment, status in [
            (f"job-{uuid.uuid4()}", 404),
            ("never--local", 404),
            (finished.id, 502),
            ("quiet--local", 502),
        ]:
            headers = bearer(platform.settings.token)
            async with http.get(f"{base}/{segment}/", headers=headers) as resp:
                assert resp.status == status, segment
    for job in (portless, private):
        await client.jobs.kill(job.id)
