"""Serving from jobs: the named HTTP URL through the proxy, and internal hostnames."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path

import aiohttp
import apolo_sdk
import pytest

from airflow_neuro.localplatform import LocalPlatform, sandbox

from ..conftest import free_port
from .helpers import read_log, start, wait_for_status

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_binary() is None, reason="bubblewrap missing")

# Answers every GET with the job's HOME (DATA_DIR/jobs/<id>/home, so which job answered),
# the path it was asked for, and the Authorization header it got.
SERVER = """
import http.server, os, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        answer = f"{os.environ['HOME']} {self.path} {self.headers.get('Authorization')}"
        body = answer.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

# Prints, for each argument, what a job gets: a URL's body, or the address a host resolves to.
PROBE = """
import socket, sys, urllib.request

for target in sys.argv[1:]:
    if target.startswith("http://"):
        print(target, urllib.request.urlopen(target, timeout=5).read().decode())
    else:
        try:
            print(target, socket.gethostbyname(target))
        except OSError:
            print(target, "unresolved")
"""


@pytest.fixture
def scripts() -> tuple[str, str]:
    # Inline: a file in the test's tmp_path is under the host's /tmp, which jobs do not see.
    return python_code(SERVER), python_code(PROBE)


def python_code(code: str) -> str:
    """A job command that runs ``code``; the job's arguments follow it."""
    return f"{sys.executable} -c {shlex.quote(code)}"


def token(platform: LocalPlatform) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform.settings.token}"}


async def answer(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    """The body once the job's server answers: it needs a moment to bind its port.

    Until then the proxy answers 502, and the port itself refuses connections.
    """
    for _ in range(100):
        try:
            async with http.get(url, headers=headers) as resp:
                if resp.status == 200:
                    return await resp.text()
                assert resp.status == 502, await resp.text()
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_named_job_reports_the_named_url_and_hostname(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    job = await start(client, "sleep 30", name="model", http=apolo_sdk.HTTPPort(port=free_port()))
    assert str(job.http_url) == f"{platform.base_url}/jobs-http/model--local/"
    assert job.internal_hostname == f"{job.id}.default"
    assert job.internal_hostname_named == "model--local.default"
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{platform.api_url}/jobs/{job.id}", headers=token(platform)) as resp,
    ):
        body = await resp.json()
    # The SDK prefers the named URL; the id's URL is still sent beside it.
    assert body["http_url"] == f"{platform.base_url}/jobs-http/{job.id}/"
    assert body["http_url_named"] == f"{platform.base_url}/jobs-http/model--local/"
    await client.jobs.kill(job.id)


async def test_job_without_a_name_or_a_port_has_no_named_url(client: apolo_sdk.Client) -> None:
    anonymous = await start(client, "sleep 30", http=apolo_sdk.HTTPPort(port=free_port()))
    assert str(anonymous.http_url).endswith(f"/jobs-http/{anonymous.id}/")
    assert anonymous.internal_hostname == f"{anonymous.id}.default"
    assert anonymous.internal_hostname_named is None
    portless = await start(client, "sleep 30", name="worker")
    assert not str(portless.http_url)
    assert portless.internal_hostname_named == "worker--local.default"
    for job in (anonymous, portless):
        await client.jobs.kill(job.id)


async def test_named_url_reaches_the_newest_live_job_across_redeploys(
    platform: LocalPlatform, client: apolo_sdk.Client, scripts: tuple[str, str]
) -> None:
    server, _ = scripts
    port = free_port()
    http_port = apolo_sdk.HTTPPort(port=port, requires_auth=True)
    first = await start(client, f"{server} {port}", name="model", http=http_port)
    url = str(first.http_url)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert resp.status == 401
        got = await answer(http, url + "predict?x=1", token(platform))
        # The platform's token is not passed on to the job.
        assert got == f"{platform.settings.jobs_dir / first.id / 'home'} /predict?x=1 None"

        await client.jobs.kill(first.id)
        async with http.get(url, headers=token(platform)) as resp:
            assert resp.status == 502
            assert "does not serve HTTP now" in await resp.text()
        await read_log(client, first.id)  # closes once the process has ended and freed the port

        second = await start(client, f"{server} {port}", name="model", http=http_port)
        assert str(second.http_url) == url
        got = await answer(http, url, token(platform))
        assert got == f"{platform.settings.jobs_dir / second.id / 'home'} / None"
        # The id's own URL still leads to that job alone.
        first_url = f"{platform.base_url}/jobs-http/{first.id}/"
        async with http.get(first_url, headers=token(platform)) as resp:
            assert resp.status == 502
    await client.jobs.kill(second.id)


async def test_named_url_without_a_live_job(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    finished = await start(client, "true", name="gone", http=apolo_sdk.HTTPPort(port=free_port()))
    await wait_for_status(client, finished.id)
    portless = await start(client, "sleep 30", name="quiet")
    base = f"{platform.base_url}/jobs-http"
    async with aiohttp.ClientSession() as http:
        for segment, status in [
            ("never--local", 404),  # no job ever had the name
            ("quiet--someone", 404),  # nor had that owner a job of the name
            ("gone--local", 502),  # the only job of the name has finished
            ("quiet--local", 502),  # the live job of the name has no HTTP port
        ]:
            async with http.get(f"{base}/{segment}/", headers=token(platform)) as resp:
                assert resp.status == status, segment
    await client.jobs.kill(portless.id)


async def test_hosts_file_is_rewritten_in_place(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    hosts = platform.settings.hosts_path
    inode = hosts.stat().st_ino
    job = await start(client, "sleep 30", name="listed")
    line = f"127.0.0.1 {job.id}.default listed--local.default\n"
    text = hosts.read_text()
    assert text.startswith(Path("/etc/hosts").read_text().rstrip("\n") + "\n")
    assert text.endswith(line)
    await client.jobs.kill(job.id)
    assert line not in hosts.read_text()
    # Jobs have this very inode bound at /etc/hosts: a new file would go unseen.
    assert hosts.stat().st_ino == inode


@needs_bwrap
async def test_other_jobs_reach_a_job_by_its_internal_hostnames(
    platform: LocalPlatform, client: apolo_sdk.Client, scripts: tuple[str, str]
) -> None:
    server, probe = scripts
    port = free_port()
    backend = await start(client, f"{server} {port}", name="backend")
    async with aiohttp.ClientSession() as http:
        await answer(http, f"http://127.0.0.1:{port}/", {})
    by_id = f"http://{backend.internal_hostname}:{port}/by-id"
    by_name = f"http://{backend.internal_hostname_named}:{port}/by-name"
    caller = await start(client, f"{probe} {by_id} {by_name} caller--local.default", name="caller")
    done = await wait_for_status(client, caller.id)
    log = b"".join(await read_log(client, caller.id)).decode()
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED, log
    home = platform.settings.jobs_dir / backend.id / "home"
    assert log.splitlines() == [
        f"{by_id} {home} /by-id None",
        f"{by_name} {home} /by-name None",
        "caller--local.default 127.0.0.1",  # a job resolves its own name too
    ]

    await client.jobs.kill(backend.id)
    later = await start(client, f"{probe} {backend.internal_hostname_named}")
    await wait_for_status(client, later.id)
    log = b"".join(await read_log(client, later.id)).decode()
    assert log == f"{backend.internal_hostname_named} unresolved\n"


# Holds the port, and takes a second to let it go when asked to stop, as servers do.
SLOW_TO_STOP = """
import signal, socket, sys, time
s = socket.socket()
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.0), sys.exit(0)))
time.sleep(600)
"""
BIND = "import socket, sys; socket.socket().bind(('0.0.0.0', int(sys.argv[1]))); print('bound')"


async def test_a_replacement_on_the_same_port_starts_once_the_old_process_let_it_go(
    client: apolo_sdk.Client,
) -> None:
    port = free_port()
    http = apolo_sdk.HTTPPort(port, requires_auth=False)
    old = await start(client, f"{sys.executable} -c '{SLOW_TO_STOP}' {port}", http=http)
    await wait_for_status(client, old.id, {apolo_sdk.JobStatus.RUNNING})
    while True:  # until the old job holds the port
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        break
    await client.jobs.kill(old.id)  # cancelled at once; its process ends a second later
    new = await start(client, f'{sys.executable} -c "{BIND}" {port}', http=http)
    done = await wait_for_status(client, new.id)
    assert (done.status, done.history.exit_code) == (apolo_sdk.JobStatus.SUCCEEDED, 0)
    assert b"".join(await read_log(client, new.id)) == b"bound\n"
