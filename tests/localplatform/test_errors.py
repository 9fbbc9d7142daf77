"""Error answers: what a client gets for a refused or failed request, over real HTTP."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import test_utils, web
from yarl import URL

from airflow_neuro.localplatform import LocalPlatform
from airflow_neuro.localplatform.errors import JobNotFound, PathEscapes, error_middleware
from airflow_neuro.localplatform.faults import FaultPlan

from .conftest import platform_settings


def api(platform: LocalPlatform, raw_path: str) -> URL:
    """A URL from an already-encoded path: '..' and the like reach the server as sent."""
    return URL(f"{platform.api_url}/{raw_path}", encoded=True)


def project_dir(platform: LocalPlatform) -> Path:
    return platform.settings.storage_dir / "local" / "default"


async def answer(resp: aiohttp.ClientResponse) -> tuple[int, Any]:
    assert resp.content_type == "application/json"
    return resp.status, await resp.json()


# --- The job API -----------------------------------------------------------------------------


async def test_unknown_job_is_400(platform: LocalPlatform, http: aiohttp.ClientSession) -> None:
    expected = (400, {"error": "no such job job-nope"})
    for method, path in (
        ("GET", "jobs/job-nope"),
        ("DELETE", "jobs/job-nope"),
        ("PUT", "jobs/job-nope/max_run_time_minutes"),
        ("GET", "jobs/job-nope/log"),
        ("GET", "jobs/job-nope/log_ws"),
    ):
        async with http.request(method, api(platform, path), json={}) as resp:
            assert await answer(resp) == expected, (method, path)


async def test_bad_job_requests_are_400(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    async with http.post(api(platform, "jobs"), data=b"{not json") as resp:
        assert await answer(resp) == (400, {"error": "the body is not valid JSON"})
    async with http.post(api(platform, "jobs"), json=["a", "list"]) as resp:
        assert await answer(resp) == (
            400,
            {"error": "Invalid job request: the body must be a JSON object"},
        )
    for query, message in (
        ("status=bogus", "status: unknown status 'bogus'"),
        ("limit=many", "limit: value is not an integer"),
        ("since=yesterday", "since: invalid ISO 8601 time 'yesterday'"),
    ):
        async with http.get(api(platform, f"jobs?{query}")) as resp:
            assert await answer(resp) == (400, {"error": message}), query


async def test_the_token_is_checked_before_anything_else(platform: LocalPlatform) -> None:
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(api(platform, "jobs/job-nope")) as resp,
    ):
        assert resp.status == 401
        assert await resp.text() == "Not authenticated"


# --- The storage API -------------------------------------------------------------------------


async def test_dot_dot_is_403(platform: LocalPlatform, http: aiohttp.ClientSession) -> None:
    url = api(platform, "storage/local/default/../secret?op=GETFILESTATUS")
    async with http.get(url) as resp:
        assert await answer(resp) == (
            403,
            {"error": "'..' is not allowed in storage paths: 'local/default/../secret'"},
        )


async def test_missing_file_is_404_with_enoent(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    for op in ("OPEN", "GETFILESTATUS", "LISTSTATUS"):
        async with http.get(api(platform, f"storage/local/default/nothing?op={op}")) as resp:
            assert await answer(resp) == (
                404,
                {"error": "No such file or directory", "errno": "ENOENT"},
            ), op


async def test_other_os_errors_are_400_with_their_errno(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    project_dir(platform).mkdir(parents=True)
    (project_dir(platform) / "plain").write_text("x")
    async with http.get(api(platform, "storage/local/default/plain?op=LISTSTATUS")) as resp:
        assert await answer(resp) == (400, {"error": "Not a directory", "errno": "ENOTDIR"})


async def test_bad_storage_requests_are_400(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    for method, path, message in (
        ("GET", "x?op=FROB", "Illegal operation: GET op=FROB"),
        ("DELETE", "x?recursive=maybe", "'recursive' must be true/1 or false/0, not 'maybe'"),
        ("POST", "x?op=RENAME", "RENAME needs a destination"),
        ("PATCH", "x?op=WRITE", "WRITE needs a header Content-Range: bytes START-END/*"),
    ):
        url = api(platform, f"storage/local/default/{path}")
        async with http.request(method, url) as resp:
            assert await answer(resp) == (400, {"error": message}), (method, path)


def rmdir_busy(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Removing the directory ``name`` fails, as for a mount point."""
    real_rmdir = os.rmdir

    def rmdir(path: str, *, dir_fd: int | None = None) -> None:
        if path == name:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        real_rmdir(path, dir_fd=dir_fd)

    monkeypatch.setattr(os, "rmdir", rmdir)


async def test_error_before_a_stream_starts_is_an_http_error(
    platform: LocalPlatform, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project_dir(platform) / "held").mkdir(parents=True)
    (project_dir(platform) / "held" / "f").write_text("x")
    rmdir_busy(monkeypatch, "held")
    url = api(platform, "storage/local/default/held?op=DELETE&recursive=true")
    async with http.delete(url, headers={"Accept": "application/x-ndjson"}) as resp:
        assert await answer(resp) == (400, {"error": "Device or resource busy", "errno": "EBUSY"})


async def test_error_after_a_stream_started_is_its_last_line(
    platform: LocalPlatform, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = project_dir(platform) / "held"
    held.mkdir(parents=True)
    # More entries than one worker-thread batch, so that some are reported before the failure.
    for i in range(300):
        (held / f"f{i}").write_text("x")
    rmdir_busy(monkeypatch, "held")
    url = api(platform, "storage/local/default/held?op=DELETE&recursive=true")
    async with http.delete(url, headers={"Accept": "application/x-ndjson"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-ndjson"
        lines = [json.loads(line) for line in (await resp.text()).splitlines()]
    *removed, last = lines
    assert removed
    assert all(line["path"].startswith("/local/default/held/f") for line in removed)
    assert last == {"error": "Device or resource busy", "errno": "EBUSY"}


async def test_injected_resets_stay_resets_on_storage(tmp_path: Path) -> None:
    settings = platform_settings(tmp_path / "p")
    settings = replace(settings, faults=FaultPlan.parse(1.0, "reset"))
    async with LocalPlatform(settings) as platform, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(api(platform, "storage/local/default/x?op=GETFILESTATUS")):
                pass


# --- The middleware on its own ---------------------------------------------------------------


async def test_file_errors_are_answered_only_under_the_file_api() -> None:
    async def os_error(request: web.Request) -> web.Response:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))

    async def value_error(request: web.Request) -> web.Response:
        raise ValueError("bad value")

    async def escapes(request: web.Request) -> web.Response:
        raise PathEscapes("outside")

    async def not_found(request: web.Request) -> web.Response:
        raise JobNotFound("no such job x")

    app = web.Application(middlewares=[error_middleware(file_api_prefixes=("/files",))])
    for prefix in ("/files", "/other"):
        app.router.add_get(f"{prefix}/os", os_error)
        app.router.add_get(f"{prefix}/value", value_error)
        app.router.add_get(f"{prefix}/escapes", escapes)
        app.router.add_get(f"{prefix}/job", not_found)
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        expected: dict[str, tuple[int, Any]] = {
            "/files/os": (400, {"error": "Not a directory", "errno": "ENOTDIR"}),
            "/files/value": (400, {"error": "bad value"}),
            "/files/escapes": (403, {"error": "outside"}),
            "/other/escapes": (403, {"error": "outside"}),
            "/files/job": (400, {"error": "no such job x"}),
            "/other/job": (400, {"error": "no such job x"}),
        }
        for path, want in expected.items():
            async with client.get(path) as resp:
                assert await answer(resp) == want, path
        # Elsewhere they are the platform's own faults.
        for path in ("/other/os", "/other/value"):
            async with client.get(path) as resp:
                assert resp.status == 500, path
