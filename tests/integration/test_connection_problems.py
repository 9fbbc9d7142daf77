"""A connection that cannot log in fails with one line naming it, its URL and the cause,
wherever the login happens (a task, the triggerer, a cancel, the Test button); the Test
button answers within seconds even when the platform is down or never answers."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from airflow_neuro.client import cancel_job
from airflow_neuro.exceptions import NeuroConnectionError, PlatformUnavailable, PlatformUnreachable
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.triggers.neuro import NeuroJobTrigger
from airflow_neuro.triggers.pool import ClientPool

from ..conftest import PlatformProcess, free_port

TOKEN = "tok-never-shown"


def connect(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, api_url: str | None = None, **fields: Any
) -> str:
    """Define connection ``conn_id`` (token ``TOKEN`` unless given) in the environment."""
    value: dict[str, Any] = {"conn_type": "neuro", "password": TOKEN, **fields}
    if api_url is not None:
        value["extra"] = {"api_url": api_url, **value.get("extra", {})}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    return conn_id


def login_error(conn_id: str, retry_budget: float = 300.0) -> NeuroConnectionError:
    with pytest.raises(NeuroConnectionError) as failed:
        NeuroHook(conn_id, retry_budget=retry_budget).login()
    message = str(failed.value)
    assert "\n" not in message
    assert TOKEN not in message
    return failed.value


@contextmanager
def answering(
    status: int, body: bytes, content_type: str, tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    """An HTTP server that is not the platform: every GET gets the same answer."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def black_hole() -> Iterator[str]:
    """A server that takes TCP connections (the kernel completes them) and never answers."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(16)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}/api/v1"


def self_signed(directory: Path) -> ssl.SSLContext:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# -- a refused token ----------------------------------------------------------------------
def test_a_refused_token_names_the_connection(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = platform_process.api_url
    error = login_error(connect(monkeypatch, "refused", url))
    assert str(error) == (
        f"connection 'refused': the platform at {url} refused the token;"
        " AuthError: Cannot authorize user"
    )


@pytest.mark.parametrize("status", [401, 403])
def test_a_401_or_403_from_the_config_is_a_refused_token(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    with answering(status, b"Not authenticated", "text/plain") as url:
        started = time.monotonic()
        error = login_error(connect(monkeypatch, "refused", url))
        assert time.monotonic() - started < 5  # not retried
    assert str(error) == (
        f"connection 'refused': the platform at {url} refused the token (HTTP {status});"
        f" RuntimeError: Unable to get server configuration: {status}"
    )


# -- nothing answers ----------------------------------------------------------------------
def test_nothing_listening_is_retried_then_named(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1"
    started = time.monotonic()
    error = login_error(connect(monkeypatch, "down", url), retry_budget=2)
    assert 1 < time.monotonic() - started < 10  # retried within the budget, then failed
    assert isinstance(error, PlatformUnreachable)
    assert isinstance(error, PlatformUnavailable)  # what callers of an outage catch
    assert str(error).startswith(
        f"connection 'down': nothing answers at {url} (connection refused);"
        " the platform did not answer login for "
    )
    assert str(error).endswith(f"Connect call failed ('127.0.0.1', {URL(url).port})]")


def test_an_unknown_host_is_nothing_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://no-such-host.invalid/api/v1"
    error = login_error(connect(monkeypatch, "nohost", url), retry_budget=1)
    assert isinstance(error, PlatformUnreachable)
    assert str(error).startswith(
        f"connection 'nohost': nothing answers at {url}: host 'no-such-host.invalid' is"
        " unknown; the platform did not answer login for "
    )


# -- not the platform's API -------------------------------------------------------------
def test_a_wrong_path_is_not_the_platforms_api(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(URL(platform_process.api_url).with_path("/api/v2"))
    error = login_error(connect(monkeypatch, "wrongpath", url, password=platform_process.token))
    assert str(error) == (
        f"connection 'wrongpath': {url} is not the platform's API: it has no /config"
        " (HTTP 404); RuntimeError: Unable to get server configuration: 404"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (b"<html><body>Welcome</body></html>", "text/html",
         "ContentTypeError: 200, message='Attempt to decode JSON with unexpected mimetype:"
         " text/html', url='{url}/config'"),
        (b'{"hello": "world"}', "application/json", "KeyError: 'headless_callback_url'"),
    ],
    ids=["html", "other-json"],
)  # fmt: skip
def test_another_http_server_is_not_the_platforms_api(
    monkeypatch: pytest.MonkeyPatch, body: bytes, content_type: str, detail: str
) -> None:
    with answering(200, body, content_type) as url:
        error = login_error(connect(monkeypatch, "elsewhere", url))
    assert str(error) == (
        f"connection 'elsewhere': {url} is not the platform's API: its /config answer is not"
        f" the platform's; {detail.format(url=url)}"
    )


# -- not a URL ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field", "value"),
    [
        ({"extra": {"api_url": "not a url"}}, "api_url", "not a url"),
        ({"extra": {"api_url": "ftp://x"}}, "api_url", "ftp://x"),
        ({"extra": {"api_url": "http://"}}, "api_url", "http://"),
        ({"host": "ftp://x"}, "host", "ftp://x"),
    ],
)
def test_not_a_url_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], field: str, value: str
) -> None:
    error = login_error(connect(monkeypatch, "nourl", **fields))
    assert str(error) == (
        f"connection 'nourl': {field} {value!r} is not a URL of the platform's API"
        " (http:// or https://, with a host, such as https://api.apolo.us/api/v1)"
    )
    assert error.__cause__ is None  # nothing was sent: no SDK error behind it


# -- TLS ----------------------------------------------------------------------------------
def test_https_to_a_plain_http_port_is_a_tls_failure(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(URL(platform_process.api_url).with_scheme("https"))
    started = time.monotonic()
    error = login_error(connect(monkeypatch, "tls", url))  # the full retry budget
    assert time.monotonic() - started < 5  # asking again would not help: not retried
    assert str(error).startswith(
        f"connection 'tls': TLS with {url} failed (an https:// URL of a plain-HTTP server?);"
        f" ClientConnectorSSLError: Cannot connect to host 127.0.0.1:{URL(url).port}"
    )
    assert "WRONG_VERSION_NUMBER" in str(error)


def test_a_self_signed_certificate_is_not_trusted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with answering(200, b"{}", "application/json", tls=self_signed(tmp_path)) as url:
        started = time.monotonic()
        error = login_error(connect(monkeypatch, "selfsigned", url))
        assert time.monotonic() - started < 5
    assert str(error).startswith(
        f"connection 'selfsigned': the TLS certificate of {url} is not trusted;"
        f" ClientConnectorCertificateError: Cannot connect to host 127.0.0.1:{URL(url).port}"
    )
    assert "certificate verify failed: self-signed certificate" in str(error)


# -- what the token may use ---------------------------------------------------------------
def test_a_cluster_the_token_cannot_use(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = platform_process.api_url
    conn = connect(
        monkeypatch, "cluster", password=platform_process.token,
        extra={"api_url": url, "cluster": "nowhere"},
    )  # fmt: skip
    assert str(login_error(conn)) == (
        f"connection 'cluster': the token cannot use cluster 'nowhere' at {url};"
        " RuntimeError: Cluster nowhere doesn't exist in a list of available clusters"
        " ['local']."
    )


# -- the same message from the triggerer and from a cancel ------------------------------
def test_the_triggerer_and_a_cancel_say_the_same(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = platform_process.api_url
    conn = connect(monkeypatch, "refused", url)
    expected = (
        f"connection 'refused': the platform at {url} refused the token;"
        " AuthError: Cannot authorize user"
    )
    with pytest.raises(NeuroConnectionError) as in_the_triggerer:
        asyncio.run(ClientPool().acquire(conn, retry_budget=5))
    assert str(in_the_triggerer.value) == expected
    params = NeuroHook(conn).connection_params()
    with pytest.raises(NeuroConnectionError) as cancelling:
        asyncio.run(cancel_job(params, "job-1"))
    assert str(cancelling.value) == expected

    async def trigger_event() -> dict[str, Any]:
        async for event in NeuroJobTrigger(job_id="job-1", neuro_conn_id=conn).run():
            return dict(event.payload)
        raise AssertionError("no event")

    # The deferred task resumes with the same words, not a trigger that crashed.
    event = asyncio.run(trigger_event())
    assert event == {"result": "error", "job_id": "job-1",
                     "message": f"NeuroConnectionError: {expected}"}  # fmt: skip


# -- the Test button ------------------------------------------------------------------------
def press_test_button(conn_id: str) -> tuple[bool, str, float]:
    started = time.monotonic()
    ok, message = NeuroHook(conn_id).test_connection()
    return ok, message, time.monotonic() - started


def test_the_test_button_on_a_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1"
    ok, message, took = press_test_button(connect(monkeypatch, "down", url))
    assert not ok
    assert took < 12
    assert message.startswith(
        f"connection 'down': nothing answers at {url} (connection refused);"
        " the platform did not answer login for "
    )


def test_the_test_button_on_a_server_that_never_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    with black_hole() as url:
        ok, message, took = press_test_button(connect(monkeypatch, "silent", url))
    assert not ok
    assert 9 < took < 12
    assert message == f"connection 'silent': no answer from {url} within 10 s"


def test_the_test_button_with_a_bad_token(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = platform_process.api_url
    ok, message, took = press_test_button(connect(monkeypatch, "refused", url))
    assert not ok
    assert took < 12
    assert message == (
        f"connection 'refused': the platform at {url} refused the token;"
        " AuthError: Cannot authorize user"
    )


def test_the_test_button_on_a_good_connection(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = platform_process.api_url
    conn = connect(monkeypatch, "good", url, password=platform_process.token)
    ok, message, took = press_test_button(conn)
    assert ok, message
    assert took < 12
    assert message == (
        f"Logged in to {url} as local with connection 'good': cluster local, org local,"
        " project default"
    )
