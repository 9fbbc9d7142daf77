"""The storage API against a job that swaps storage directories for symlinks to the outside.

A job mounts storage folders read-write, so it can replace a directory with a symlink at
any moment, also between the API's check of a path and its use. Nothing outside the root may
then be read, written, made, renamed or removed through the API.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from airflow_neuro.localplatform import sandbox
from airflow_neuro.localplatform.errors import PathEscapes, error_middleware
from airflow_neuro.localplatform.storage import MAX_OFFSET, PREFIX, Storage
from airflow_neuro.localplatform.storage_paths import StoragePaths

from .conftest import Server

# The storage code alone: no Airflow and no SDK in it (see the "once" marker).
pytestmark = pytest.mark.once

SECRET = b"TOP-SECRET, outside the storage"
VICTIM = b"victim, outside the storage"
NOBODY = (65534, 65534)


@pytest.fixture
async def http(server: Server) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=server.headers) as session:
        yield session


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the storage root, with the same names a storage folder has."""
    path = tmp_path / "outside"
    (path / "inner").mkdir(parents=True)
    (path / "file").write_bytes(SECRET)
    (path / "secret").write_bytes(SECRET)
    (path / "victim").write_bytes(VICTIM)
    (path / "inner" / "victim").write_bytes(VICTIM)
    return path


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every entry under ``path``: a file's content, None for a directory."""
    return {
        str(entry.relative_to(path)): None if entry.is_dir() else entry.read_bytes()
        for entry in sorted(path.rglob("*"))
    }


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # under the project, {box} stands for the swapped directory
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def url(self, server: Server, box: str) -> URL:
        return server.project_url(self.path.format(box=box))


RANGE = (("Range", "bytes=0-5"),)
WRITE_AT_0 = (("Content-Range", "bytes 0-3/*"),)
NDJSON = (("Accept", "application/x-ndjson"),)

THROUGH_A_SWAPPED_DIRECTORY = {
    "read": Call("GET", "{box}/secret?op=OPEN"),
    "ranged read": Call("GET", "{box}/secret?op=OPEN", RANGE),
    "write": Call("PATCH", "{box}/victim?op=WRITE", WRITE_AT_0, b"EVIL"),
    "create new": Call("PUT", "{box}/planted?op=CREATE", body=b"EVIL"),
    "create over": Call("PUT", "{box}/victim?op=CREATE", body=b"EVIL"),
    "list": Call("GET", "{box}?op=LISTSTATUS"),
    "list ndjson": Call("GET", "{box}?op=LISTSTATUS", NDJSON),
    "list below": Call("GET", "{box}/inner?op=LISTSTATUS"),
    "stat": Call("GET", "{box}/secret?op=GETFILESTATUS"),
    "rename source": Call("POST", "{box}/victim?op=RENAME&destination=/local/default/stolen"),
    "rename destination": Call("POST", "mine?op=RENAME&destination=/local/default/{box}/planted"),
    "rename destination over": Call(
        "POST", "mine?op=RENAME&destination=/local/default/{box}/victim"
    ),
    "delete file": Call("DELETE", "{box}/victim?op=DELETE&recursive=false"),
    "delete directory": Call("DELETE", "{box}/inner?op=DELETE&recursive=true"),
    "delete directory ndjson": Call("DELETE", "{box}/inner?op=DELETE&recursive=true", NDJSON),
    "mkdirs": Call("PUT", "{box}/newdir/deeper?op=MKDIRS"),
    "mkdirs the link": Call("PUT", "{box}?op=MKDIRS"),
    "disk usage": Call("GET", "{box}/anything?op=GETDISKUSAGE"),
}


@pytest.mark.parametrize("box", ["box", "real/box"])
@pytest.mark.parametrize("name", list(THROUGH_A_SWAPPED_DIRECTORY))
async def test_a_directory_swapped_for_a_symlink_is_not_followed(
    server: Server, http: aiohttp.ClientSession, outside: Path, name: str, box: str
) -> None:
    # As a job leaves it: a storage folder replaced with a link to the outside.
    link = server.project_dir / box
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    (server.project_dir / "mine").write_bytes(b"mine")
    before = snapshot(outside)
    call = THROUGH_A_SWAPPED_DIRECTORY[name]
    async with http.request(
        call.method, call.url(server, box), headers=dict(call.headers), data=call.body
    ) as resp:
        body = await resp.read()
    assert resp.status == 403, body
    assert b"is a symlink" in body
    assert b"TOP-SECRET" not in body
    assert b"victim" not in body  # nothing of the outside listed either
    assert snapshot(outside) == before
    assert (server.project_dir / "mine").read_bytes() == b"mine"
    assert link.is_symlink()


THROUGH_A_FINAL_SYMLINK = {
    "read": Call("GET", "secret-link?op=OPEN"),
    "ranged read": Call("GET", "secret-link?op=OPEN", RANGE),
    "write": Call("PATCH", "victim-link?op=WRITE", WRITE_AT_0, b"EVIL"),
    "create over": Call("PUT", "victim-link?op=CREATE", body=b"EVIL"),
    "create through a dangling link": Call("PUT", "dangling?op=CREATE", body=b"EVIL"),
}


@pytest.mark.parametrize("name", list(THROUGH_A_FINAL_SYMLINK))
async def test_a_file_swapped_for_a_symlink_is_not_followed(
    server: Server, http: aiohttp.ClientSession, outside: Path, name: str
) -> None:
    (server.project_dir / "secret-link").symlink_to(outside / "secret")
    (server.project_dir / "victim-link").symlink_to(outside / "victim")
    (server.project_dir / "dangling").symlink_to(outside / "new-file")
    before = snapshot(outside)
    call = THROUGH_A_FINAL_SYMLINK[name]
    async with http.request(
        call.method, call.url(server, ""), headers=dict(call.headers), data=call.body
    ) as resp:
        body = await resp.read()
    assert resp.status == 403, body
    assert b"TOP-SECRET" not in body
    assert snapshot(outside) == before


async def test_a_symlink_is_an_entry_that_can_be_seen_moved_and_removed(
    server: Server, http: aiohttp.ClientSession, outside: Path
) -> None:
    (server.project_dir / "box").symlink_to(outside)
    before = snapshot(outside)
    async with http.get(server.project_url("?op=LISTSTATUS")) as resp:
        (status,) = (await resp.json())["FileStatuses"]["FileStatus"]
    assert (status["path"], status["type"], status["target"]) == ("box", "SYMLINK", str(outside))
    async with http.get(server.project_url("box?op=GETFILESTATUS")) as resp:
        assert (await resp.json())["FileStatus"]["type"] == "SYMLINK"
    rename = server.project_url("box?op=RENAME&destination=/local/default/moved")
    async with http.post(rename) as resp:
        assert resp.status == 204
    assert (server.project_dir / "moved").readlink() == outside
    # A recursive delete removes the link, not what it leads to.
    async with http.delete(server.project_url("moved?op=DELETE&recursive=true")) as resp:
        assert resp.status == 204
    assert not os.path.lexists(server.project_dir / "moved")
    assert snapshot(outside) == before


async def test_a_recursive_delete_removes_links_inside_the_tree_not_their_targets(
    server: Server, http: aiohttp.ClientSession, outside: Path
) -> None:
    tree = server.project_dir / "tree" / "sub"
    tree.mkdir(parents=True)
    (tree / "dir-link").symlink_to(outside)
    (tree / "file-link").symlink_to(outside / "victim")
    before = snapshot(outside)
    async with http.delete(server.project_url("tree?op=DELETE&recursive=true")) as resp:
        assert resp.status == 204
    assert not (server.project_dir / "tree").exists()
    assert snapshot(outside) == before


# --- A job flipping a directory while the API is in use ------------------------------------

# Swaps two names atomically (renameat2 RENAME_EXCHANGE), as fast as it can, in a process of
# its own so that it races the server truly in parallel.
FLIPPER = """
import ctypes, os, sys, time
a, b, seconds = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
print("flipping", flush=True)
flips, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    for _ in range(100):
        if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    flips += 100
print(flips, flush=True)
"""
RACE_SECONDS = 2.0


@dataclass
class Race:
    server: Server
    http: aiohttp.ClientSession
    statuses: dict[str, set[int]]

    async def call(self, what: str, method: str, path: str, **kwargs: object) -> bytes:
        body = b""
        async with self.http.request(method, self.server.project_url(path), **kwargs) as resp:  # type: ignore[arg-type]
            try:
                async for chunk in resp.content.iter_any():
                    body += chunk
            except aiohttp.ClientPayloadError:
                # The file was emptied by another request while it was being read: the
                # server cut the connection short. What came until then is checked all the same.
                assert what.endswith("read"), what
        self.statuses.setdefault(what, set()).add(resp.status)
        assert resp.status < 500, (what, resp.status, body)
        assert b"TOP-SECRET" not in body, what
        return body


@pytest.fixture
def flipping(server: Server, outside: Path) -> Iterator[subprocess.Popen[str]]:
    """project/race: a real directory one moment, a symlink to ``outside`` the next."""
    race = server.project_dir / "race"
    (race / "inner").mkdir(parents=True)
    (race / "file").write_bytes(b"inside")
    (server.project_dir / ".swap").symlink_to(outside)
    flipper = subprocess.Popen(
        [sys.executable, "-c", FLIPPER, str(race), str(server.project_dir / ".swap"),
         str(RACE_SECONDS)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert flipper.stdout is not None
        assert flipper.stdout.readline().strip() == "flipping"
        yield flipper
    finally:
        flipper.kill()
        flipper.wait()


async def test_a_directory_flipping_to_a_symlink_never_leads_outside(
    server: Server,
    http: aiohttp.ClientSession,
    outside: Path,
    flipping: subprocess.Popen[str],
) -> None:
    before = snapshot(outside)
    race = Race(server, http, {})
    deadline = time.monotonic() + RACE_SECONDS

    async def hammer(worker: int) -> None:
        mine = f"mine-{worker}"
        while time.monotonic() < deadline:
            await race.call("read", "GET", "race/file?op=OPEN")
            await race.call("ranged read", "GET", "race/file?op=OPEN", headers=dict(RANGE))
            await race.call(
                "write", "PATCH", "race/file?op=WRITE", headers=dict(WRITE_AT_0), data=b"EVIL"
            )
            await race.call("create", "PUT", f"race/planted-{worker}?op=CREATE", data=b"EVIL")
            await race.call("create over", "PUT", "race/file?op=CREATE", data=b"EVIL")
            listing = await race.call("list", "GET", "race?op=LISTSTATUS")
            assert b'"victim"' not in listing  # only the outside has one
            await race.call("stat", "GET", "race/secret?op=GETFILESTATUS")
            await race.call("mkdirs", "PUT", f"race/newdir-{worker}?op=MKDIRS")
            await race.call("delete", "DELETE", "race/victim?op=DELETE&recursive=false")
            await race.call("delete tree", "DELETE", "race/inner?op=DELETE&recursive=true")
            await race.call(
                "rename source",
                "POST",
                f"race/secret?op=RENAME&destination=/local/default/stolen-{worker}",
            )
            await race.call("create mine", "PUT", f"{mine}?op=CREATE", data=b"mine")
            await race.call(
                "rename destination",
                "POST",
                f"{mine}?op=RENAME&destination=/local/default/race/moved-{worker}",
            )
            await race.call("disk usage", "GET", "race/x?op=GETDISKUSAGE")

    await asyncio.gather(*(hammer(worker) for worker in range(4)))
    assert flipping.wait(30) == 0
    assert flipping.stdout is not None
    assert int(flipping.stdout.read()) > 1000  # it did flip, many times

    assert snapshot(outside) == before
    assert not any(server.project_dir.glob("stolen-*"))
    # The API was in use all along: the real directory got both answers, too.
    assert {200, 403} <= race.statuses["read"]
    assert {201, 403} <= race.statuses["create"]


# --- Offsets ---------------------------------------------------------------------------------

BAD_RANGES = [
    f"bytes {10**25}-{10**25 + 3}/*",
    f"bytes 0-{10**25}/*",
    f"bytes {MAX_OFFSET + 1}-{MAX_OFFSET + 4}/*",
    f"bytes {'9' * 1000}-{'9' * 1001}/*",  # far more digits than int() takes by default
    "bytes -1-3/*",
    "bytes 0--3/*",
    "bytes a-b/*",
    "bytes 5-3/*",
    "bytes 0-3/x",
    "",
]


@pytest.mark.parametrize("content_range", BAD_RANGES)
async def test_a_write_at_an_impossible_offset_is_a_bad_request(
    server: Server, http: aiohttp.ClientSession, content_range: str
) -> None:
    target = server.project_dir / "w.bin"
    target.write_bytes(b"0123456789")
    headers = {"Content-Range": content_range} if content_range else {}
    write = server.project_url("w.bin?op=WRITE")
    async with http.patch(write, headers=headers, data=b"EVIL") as resp:
        assert resp.status == 400
        assert "Content-Range" in (await resp.json())["error"]
    assert target.read_bytes() == b"0123456789"


async def test_an_offset_query_parameter_is_no_substitute_for_content_range(
    server: Server, http: aiohttp.ClientSession
) -> None:
    # The SDK and the real server carry WRITE's offset in Content-Range only.
    (server.project_dir / "w.bin").write_bytes(b"0123456789")
    url = server.project_url(f"w.bin?op=WRITE&offset={10**25}")
    async with http.patch(url, data=b"EVIL") as resp:
        assert resp.status == 400
        assert "Content-Range" in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("range_", "status"),
    [(f"bytes={10**25}-", 416), (f"bytes=0-{10**25}", 206), (f"bytes=-{10**25}", 206)],
)
async def test_a_read_beyond_any_file_is_no_server_error(
    server: Server, http: aiohttp.ClientSession, range_: str, status: int
) -> None:
    (server.project_dir / "r.bin").write_bytes(b"0123456789")
    async with http.get(server.project_url("r.bin?op=OPEN"), headers={"Range": range_}) as resp:
        assert resp.status == status
        if status == 206:
            assert await resp.read() == b"0123456789"


# --- Ownership -------------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")


@pytest.fixture
async def owned_storage(tmp_path: Path) -> AsyncIterator[tuple[Path, URL]]:
    """The storage API alone, giving what it makes to nobody (65534)."""
    root = tmp_path / "owned"
    storage = Storage(root, "local", owner=NOBODY)
    app = web.Application(middlewares=[error_middleware(file_api_prefixes=(PREFIX,))])
    app.add_routes(storage.routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield storage.paths.root, URL(f"http://127.0.0.1:{port}{PREFIX}/local/default")
    finally:
        await runner.cleanup()


MADE = ("a", "a/b", "a/b/c", "d", "d/e", "d/e/f.txt")


def owner(path: Path) -> tuple[int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid


@needs_root
async def test_what_the_api_makes_belongs_to_the_owner(
    owned_storage: tuple[Path, URL],
) -> None:
    root, base = owned_storage
    project = root / "local" / "default"
    async with aiohttp.ClientSession() as http:
        async with http.put(base / "a/b/c" % {"op": "MKDIRS"}) as resp:
            assert resp.status == 201
        async with http.put(base / "d/e/f.txt" % {"op": "CREATE"}, data=b"x") as resp:
            assert resp.status == 201
        (project / "platform-made").write_bytes(b"")
        async with http.put(base / "platform-made" % {"op": "CREATE"}, data=b"y") as resp:
            assert resp.status == 201
        async with http.patch(
            base / "d/e/f.txt" % {"op": "WRITE"},
            headers={"Content-Range": "bytes 1-1/*"},
            data=b"z",
        ) as resp:
            assert resp.status == 200

    for made in ("local", "local/default", *(f"local/default/{p}" for p in MADE)):
        assert owner(root / made) == NOBODY, made
    assert (project / "d/e/f.txt").read_bytes() == b"xz"
    # Rewritten, not made: a file keeps the owner it has.
    assert owner(project / "platform-made") == (0, 0)
    assert owner(root) == (os.geteuid(), os.getegid())


@needs_root
def test_volume_directories_belong_to_the_owner(tmp_path: Path) -> None:
    paths = StoragePaths(tmp_path / "storage", "local", owner=NOBODY)
    made = paths.ensure_dir("storage://local/org/proj/data")
    assert made == paths.root / "org/proj/data"
    for path in ("org", "org/proj", "org/proj/data"):
        assert owner(paths.root / path) == NOBODY
    with paths.pin_dir("storage://local/org/proj/out") as pinned:
        assert owner(paths.root / "org/proj/out") == NOBODY
        assert pinned.path == paths.root / "org/proj/out"


def test_without_an_owner_nothing_is_given_away(tmp_path: Path) -> None:
    paths = StoragePaths(tmp_path / "storage", "local")
    paths.ensure_dir("storage://local/org/proj/data")
    assert owner(paths.root / "org/proj/data") == (os.geteuid(), os.getegid())


# --- Volume sources --------------------------------------------------------------------------


def test_ensure_dir_refuses_a_symlink_on_the_way(tmp_path: Path, outside: Path) -> None:
    paths = StoragePaths(tmp_path / "storage", "local")
    (paths.root / "org").mkdir()
    (paths.root / "org" / "proj").symlink_to(outside)
    for uri in ("storage://local/org/proj", "storage://local/org/proj/data"):
        with pytest.raises(PathEscapes, match="is a symlink"):
            paths.ensure_dir(uri)
        with pytest.raises(PathEscapes, match="is a symlink"):
            paths.pin_dir(uri)
    assert sorted(os.listdir(outside)) == ["file", "inner", "secret", "victim"]
    (paths.root / "org" / "file").write_bytes(b"")
    with pytest.raises(FileExistsError):
        paths.ensure_dir("storage://local/org/file")
    with pytest.raises(ValueError, match="not on cluster"):
        paths.ensure_dir("storage://other/org/proj")


def test_a_pinned_directory_stays_the_one_checked(tmp_path: Path, outside: Path) -> None:
    paths = StoragePaths(tmp_path / "storage", "local")
    with paths.pin_dir("storage://local/org/proj/data") as pinned:
        (pinned.path / "mine").write_bytes(b"")
        # The job swaps the directory for a link to the outside before the mount.
        pinned.path.rename(pinned.path.with_name("elsewhere"))
        pinned.path.symlink_to(outside)
        assert os.listdir(f"/proc/self/fd/{pinned.fd}") == ["mine"]
    assert pinned.fd == -1


@pytest.mark.skipif(sandbox.bwrap_binary() is None, reason="bubblewrap missing")
def test_bubblewrap_mounts_the_pinned_directory_and_closes_it(
    tmp_path: Path, outside: Path
) -> None:
    bwrap = sandbox.bwrap_binary()
    assert bwrap is not None
    paths = StoragePaths(tmp_path / "storage", "local")
    mount = tmp_path / "mnt"
    mount.mkdir()
    with paths.pin_dir("storage://local/org/proj/data") as pinned:
        (pinned.path / "mine").write_bytes(b"")
        pinned.path.rename(pinned.path.with_name("elsewhere"))
        pinned.path.symlink_to(outside)
        # The job must not keep the descriptor: through it, a read-only volume is writable.
        job = f"ls {mount}; echo x > /proc/self/fd/{pinned.fd}/written || echo closed"
        run = subprocess.run(
            [bwrap, "--dev-bind", "/", "/", "--ro-bind-fd", str(pinned.fd), str(mount),
             "sh", "-c", job],
            pass_fds=[pinned.fd], capture_output=True, text=True,
        )  # fmt: skip
    if "Unknown option --ro-bind-fd" in run.stderr:
        pytest.skip("bubblewrap older than 0.8.0")
    assert run.stdout.split() == ["mine", "closed"], run.stderr
    assert os.listdir(tmp_path / "storage/org/proj/elsewhere") == ["mine"]
    assert snapshot(outside) == {
        "file": SECRET, "inner": None, "inner/victim": VICTIM, "secret": SECRET, "victim": VICTIM
    }  # fmt: skip
