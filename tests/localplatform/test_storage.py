"""Platform storage through the real SDK over HTTP, and the guard on its root."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import apolo_sdk
import pytest
from yarl import URL

from airflow_neuro.localplatform.storage_paths import StoragePaths

from .conftest import Server


@pytest.fixture
def sdk(client: apolo_sdk.Client) -> apolo_sdk.Client:
    return client


# --- Helpers ---------------------------------------------------------------------------------


def uri(path: str) -> URL:
    return URL(f"storage://local/local/default/{path}")


async def read(client: apolo_sdk.Client, path: str, **kwargs: int) -> bytes:
    async with client.storage.open(uri(path), **kwargs) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def names(client: apolo_sdk.Client, path: str) -> dict[str, apolo_sdk.FileStatusType]:
    async with client.storage.list(uri(path)) as listing:
        return {status.name: status.type async for status in listing}


# --- Through the SDK -------------------------------------------------------------------------


async def test_mkdir(server: Server, sdk: apolo_sdk.Client) -> None:
    await sdk.storage.mkdir(uri("a/b/c"), parents=True)
    assert (server.project_dir / "a/b/c").is_dir()
    await sdk.storage.mkdir(uri("a/b/c"), parents=True, exist_ok=True)
    # These two are decided by the SDK from GETFILESTATUS answers (404 vs 200).
    with pytest.raises(FileExistsError):
        await sdk.storage.mkdir(uri("a/b/c"))
    with pytest.raises(FileNotFoundError):
        await sdk.storage.mkdir(uri("x/y"))
    await sdk.storage.mkdir(uri("a/d"))
    assert (server.project_dir / "a/d").is_dir()
    # This one reaches the server, which answers EEXIST for a file in the way.
    await sdk.storage.create(uri("a/file"), b"")
    with pytest.raises(FileExistsError):
        await sdk.storage.mkdir(uri("a/file"), exist_ok=True)


async def test_create_stat_list_and_read(server: Server, sdk: apolo_sdk.Client) -> None:
    await sdk.storage.mkdir(uri("data"), parents=True)
    await sdk.storage.create(uri("data/model.bin"), b"0123456789")

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"hello ", b"streamed ", b"world"):
            yield part

    # CREATE makes missing parent directories, as the real server does.
    await sdk.storage.create(uri("data/deep/er/streamed.txt"), chunks())
    assert (server.project_dir / "data/model.bin").read_bytes() == b"0123456789"
    assert (
        server.project_dir / "data/deep/er/streamed.txt"
    ).read_bytes() == b"hello streamed world"

    status = await sdk.storage.stat(uri("data/model.bin"))
    assert status.type == apolo_sdk.FileStatusType.FILE
    assert status.size == 10
    assert status.uri == uri("data/model.bin")
    assert status.permission == apolo_sdk.Action.MANAGE
    assert abs(status.modification_time - time.time()) < 60
    folder = await sdk.storage.stat(uri("data"))
    assert folder.type == apolo_sdk.FileStatusType.DIRECTORY
    assert folder.uri == uri("data")

    assert await names(sdk, "data") == {
        "model.bin": apolo_sdk.FileStatusType.FILE,
        "deep": apolo_sdk.FileStatusType.DIRECTORY,
    }
    async with sdk.storage.list(uri("data")) as listing:
        by_name = {status.name: status async for status in listing}
    assert by_name["model.bin"].size == 10
    assert by_name["model.bin"].uri == uri("data/model.bin")

    assert await read(sdk, "data/model.bin") == b"0123456789"
    assert await read(sdk, "data/model.bin", offset=3) == b"3456789"
    assert await read(sdk, "data/model.bin", offset=2, size=4) == b"2345"
    assert await read(sdk, "data/model.bin", offset=8, size=100) == b"89"
    await sdk.storage.create(uri("data/empty"), b"")
    assert await read(sdk, "data/empty") == b""


async def test_upload_and_download_of_a_large_file(
    server: Server, sdk: apolo_sdk.Client, tmp_path: Path
) -> None:
    # Over the SDK's 1 MiB first chunk, so the rest arrives as WRITEs at offsets.
    payload = os.urandom(2 * 2**20 + 12345)
    local = tmp_path / "big.bin"
    local.write_bytes(payload)
    await sdk.storage.mkdir(uri("big"), parents=True)
    await sdk.storage.upload_file(URL(local.as_uri()), uri("big/big.bin"))
    assert (server.project_dir / "big/big.bin").read_bytes() == payload
    assert (await sdk.storage.stat(uri("big/big.bin"))).size == len(payload)

    back = tmp_path / "back.bin"
    await sdk.storage.download_file(uri("big/big.bin"), URL(back.as_uri()))
    assert back.read_bytes() == payload
    assert await read(sdk, "big/big.bin", offset=2**20 + 7, size=5) == payload[2**20 + 7 :][:5]


async def test_write_at_an_offset(server: Server, sdk: apolo_sdk.Client) -> None:
    await sdk.storage.create(uri("w.bin"), b"0123456789")
    await sdk.storage.write(uri("w.bin"), b"ab", 8)
    await sdk.storage.write(uri("w.bin"), b"XY", 12)  # past the end: a hole of zeros
    assert (server.project_dir / "w.bin").read_bytes() == b"01234567ab\0\0XY"
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await sdk.storage.write(uri("missing.bin"), b"x", 0)


async def test_rename(server: Server, sdk: apolo_sdk.Client) -> None:
    await sdk.storage.mkdir(uri("src/sub"), parents=True)
    await sdk.storage.create(uri("src/sub/f.txt"), b"payload")
    await sdk.storage.mv(uri("src/sub/f.txt"), uri("src/g.txt"))
    assert await read(sdk, "src/g.txt") == b"payload"
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await sdk.storage.stat(uri("src/sub/f.txt"))

    await sdk.storage.mv(uri("src"), uri("dst"))
    assert not (server.project_dir / "src").exists()
    assert (server.project_dir / "dst/g.txt").read_bytes() == b"payload"
    assert await names(sdk, "dst") == {
        "sub": apolo_sdk.FileStatusType.DIRECTORY,
        "g.txt": apolo_sdk.FileStatusType.FILE,
    }
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await sdk.storage.mv(uri("nothing"), uri("elsewhere"))


async def test_delete(server: Server, sdk: apolo_sdk.Client) -> None:
    await sdk.storage.mkdir(uri("tree/sub"), parents=True)
    await sdk.storage.create(uri("tree/sub/f"), b"x")
    await sdk.storage.create(uri("tree/top"), b"y")

    with pytest.raises(IsADirectoryError) as err:
        await sdk.storage.rm(uri("tree"))
    assert err.value.errno == errno.EISDIR
    assert (server.project_dir / "tree/sub/f").exists()

    await sdk.storage.rm(uri("tree/top"))
    assert not (server.project_dir / "tree/top").exists()

    deleted: list[tuple[URL, bool]] = []

    class Progress(apolo_sdk.AbstractDeleteProgress):
        def delete(self, data: apolo_sdk.StorageProgressDelete) -> None:
            deleted.append((data.uri, data.is_dir))

    await sdk.storage.rm(uri("tree"), recursive=True, progress=Progress())
    assert deleted == [
        (uri("tree/sub/f"), False),
        (uri("tree/sub"), True),
        (uri("tree"), True),
    ]
    assert not (server.project_dir / "tree").exists()
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await sdk.storage.stat(uri("tree"))
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await sdk.storage.rm(uri("tree"), recursive=True)


async def test_missing_paths_are_not_found(sdk: apolo_sdk.Client) -> None:
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await sdk.storage.stat(uri("no/such/model.pth"))
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await read(sdk, "no/such/model.pth")
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await names(sdk, "no/such")


async def test_os_errors_carry_their_errno(sdk: apolo_sdk.Client) -> None:
    await sdk.storage.create(uri("plain"), b"x")
    with pytest.raises(NotADirectoryError):
        await names(sdk, "plain")
    with pytest.raises(IsADirectoryError):
        await read(sdk, "")
    with pytest.raises(IsADirectoryError):
        await sdk.storage.create(uri(""), b"x")


async def test_disk_usage(sdk: apolo_sdk.Client) -> None:
    # Also for a project nothing was written to yet.
    usage = await sdk.storage.disk_usage()
    assert usage.total >= usage.free > 0
    assert usage.used > 0


# --- The raw HTTP API ------------------------------------------------------------------------


async def test_json_listing_without_ndjson(server: Server, sdk: apolo_sdk.Client) -> None:
    await sdk.storage.create(uri("d/f"), b"abc")
    async with (
        aiohttp.ClientSession(headers=server.headers) as http,
        http.get(server.url("local/default/d?op=LISTSTATUS")) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "application/json"
        (status,) = (await resp.json())["FileStatuses"]["FileStatus"]
    assert status["path"] == "f"
    assert status["type"] == "FILE"
    assert status["length"] == 3
    assert status["permission"] == "manage"


async def test_ranges(server: Server, sdk: apolo_sdk.Client) -> None:
    await sdk.storage.create(uri("r"), b"0123456789")
    async with aiohttp.ClientSession(headers=server.headers) as http:
        url = server.url("local/default/r?op=OPEN")
        async with http.get(url, headers={"Range": "bytes=-3"}) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == "bytes 7-9/10"
            assert await resp.read() == b"789"
        async with http.get(url, headers={"Range": "bytes=10-"}) as resp:
            assert resp.status == 416
            assert resp.headers["Content-Range"] == "bytes */10"


ESCAPES = [
    "local/default/../../../../etc/passwd",
    "local/default/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "local/default/%2E%2E%2F%2E%2E%2F..%2Fetc/passwd",
    "..",
]


@pytest.mark.parametrize("path", ESCAPES)
async def test_dot_dot_is_refused(server: Server, path: str) -> None:
    server.root.mkdir(parents=True, exist_ok=True)
    async with aiohttp.ClientSession(headers=server.headers) as http:
        for method, op in (("GET", "GETFILESTATUS"), ("GET", "OPEN"), ("PUT", "CREATE")):
            async with http.request(method, server.url(f"{path}?op={op}"), data=b"x") as resp:
                assert resp.status == 403, (method, op)
                assert "'..' is not allowed" in (await resp.json())["error"]
        rename = server.url("local/default/a?op=RENAME&destination=/local/../../evil")
        async with http.post(rename) as resp:
            assert resp.status == 403


async def test_symlinks_cannot_lead_outside(server: Server, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "secret").write_text("secret")
    server.project_dir.mkdir(parents=True, exist_ok=True)
    (server.project_dir / "out").symlink_to(outside)
    (server.project_dir / "secret-link").symlink_to(outside / "secret")
    (server.project_dir / "dangling").symlink_to(outside / "new-file")
    (server.project_dir / "ok").write_bytes(b"fine")
    (server.project_dir / "inside-link").symlink_to("ok")

    refused = [
        ("GET", "out/secret?op=GETFILESTATUS"),
        ("GET", "out?op=LISTSTATUS"),
        ("GET", "out/secret?op=OPEN"),
        ("GET", "secret-link?op=OPEN"),
        ("PUT", "out/evil?op=CREATE"),
        ("PUT", "dangling?op=CREATE"),
        ("PATCH", "secret-link?op=WRITE"),
        ("PUT", "out/newdir?op=MKDIRS"),
        ("DELETE", "out/inner?op=DELETE&recursive=true"),
        ("POST", "ok?op=RENAME&destination=/local/default/out/stolen"),
        ("POST", "out/secret?op=RENAME&destination=/local/default/mine"),
    ]
    async with aiohttp.ClientSession(headers=server.headers) as http:
        for method, path in refused:
            headers = {"Content-Range": "bytes 0-0/*"}
            url = server.url(f"local/default/{path}")
            async with http.request(method, url, data=b"x", headers=headers) as resp:
                assert resp.status == 403, (method, path)
                assert "outside the storage" in (await resp.json())["error"]

        # Even a link that stays inside is never followed (a job can repoint it at any
        # moment); a link itself can be looked at and removed.
        async with http.get(server.url("local/default/inside-link?op=OPEN")) as resp:
            assert resp.status == 403
            assert "is a symlink" in (await resp.json())["error"]
        async with http.get(server.url("local/default/out?op=GETFILESTATUS")) as resp:
            status = (await resp.json())["FileStatus"]
            assert (status["type"], status["target"]) == ("SYMLINK", str(outside))
        async with http.delete(server.url("local/default/out?op=DELETE&recursive=true")) as resp:
            assert resp.status == 204

    assert not (server.project_dir / "out").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["inner", "secret"]
    assert (outside / "secret").read_text() == "secret"
    assert not (outside / "new-file").exists()


async def test_the_root_cannot_be_deleted(server: Server) -> None:
    async with (
        aiohttp.ClientSession(headers=server.headers) as http,
        http.delete(server.url("?op=DELETE&recursive=true")) as resp,
    ):
        assert resp.status == 403
    assert server.root.is_dir()


# --- URIs to local paths ---------------------------------------------------------------------


def test_local_path(tmp_path: Path) -> None:
    storage = StoragePaths(tmp_path / "storage", "local")
    root = (tmp_path / "storage").resolve()
    assert storage.local_path("storage://local/org/proj/a/b") == root / "org/proj/a/b"
    assert storage.local_path("storage://local/org/proj/a%20b") == root / "org/proj/a b"
    assert storage.local_path("storage://local/org/proj/") == root / "org/proj"
    assert storage.local_path("storage://local") == root
    (root / "org/proj").mkdir(parents=True)
    (root / "org/proj/alias").symlink_to(root / "org/proj/real")
    assert storage.local_path("storage://local/org/proj/alias/x") == root / "org/proj/real/x"

    (root / "org/link").symlink_to(tmp_path)
    for bad, why in (
        ("file:///etc", "not a storage:// URI"),
        ("storage:data", "not on cluster"),
        ("storage://other/org/proj/a", "not on cluster"),
        ("storage://local/org/../../etc", "'..' is not allowed"),
        ("storage://local/org/%2e%2e/%2E%2E/etc", "'..' is not allowed"),
        ("storage://local/org/link/elsewhere", "outside the storage"),
        ("storage://local/org/proj/a?b", "query or fragment"),
    ):
        with pytest.raises(ValueError, match=why):
            storage.local_path(bad)
