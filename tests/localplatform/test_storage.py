"""Platform storage through the real SDK, and the guard on its root."""

from __future__ import annotations

import errno
from pathlib import Path

import aiohttp
import apolo_sdk
import pytest
from yarl import URL

from airflow_neuro.localplatform import LocalPlatform
from airflow_neuro.localplatform.storage import Storage


def uri(path: str) -> URL:
    return URL(f"storage://local/local/default/{path}")


async def read(client: apolo_sdk.Client, path: str, **kwargs: int) -> bytes:
    async with client.storage.open(uri(path), **kwargs) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def test_file_round_trip(platform: LocalPlatform, client: apolo_sdk.Client) -> None:
    await client.storage.mkdir(uri("data/nested"), parents=True)
    await client.storage.create(uri("data/nested/model.bin"), b"0123456789")
    on_disk = platform.settings.storage_dir / "local/default/data/nested/model.bin"
    assert on_disk.read_bytes() == b"0123456789"

    status = await client.storage.stat(uri("data/nested/model.bin"))
    assert status.type == apolo_sdk.FileStatusType.FILE
    assert status.size == 10
    assert status.uri == uri("data/nested/model.bin")
    assert (await client.storage.stat(uri("data"))).type == apolo_sdk.FileStatusType.DIRECTORY

    async with client.storage.list(uri("data/nested")) as listing:
        assert [f.name async for f in listing] == ["model.bin"]

    assert await read(client, "data/nested/model.bin") == b"0123456789"
    assert await read(client, "data/nested/model.bin", offset=3) == b"3456789"
    assert await read(client, "data/nested/model.bin", offset=2, size=4) == b"2345"

    await client.storage.write(uri("data/nested/model.bin"), b"ab", 8)
    assert on_disk.read_bytes() == b"01234567ab"

    await client.storage.mv(uri("data/nested/model.bin"), uri("data/final.bin"))
    assert await read(client, "data/final.bin") == b"01234567ab"
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await client.storage.stat(uri("data/nested/model.bin"))


async def test_delete(client: apolo_sdk.Client) -> None:
    await client.storage.mkdir(uri("tree/sub"), parents=True)
    await client.storage.create(uri("tree/sub/f"), b"x")
    with pytest.raises(OSError, match=r"not empty|directory") as err:
        await client.storage.rm(uri("tree"))
    assert err.value.errno in (errno.ENOTEMPTY, errno.EISDIR)
    await client.storage.rm(uri("tree"), recursive=True)
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await client.storage.stat(uri("tree"))


async def test_stat_of_missing_path(client: apolo_sdk.Client) -> None:
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await client.storage.stat(uri("no/such/model.pth"))


async def test_disk_usage(client: apolo_sdk.Client) -> None:
    usage = await client.storage.disk_usage()
    assert usage.total >= usage.free > 0


async def test_paths_cannot_leave_the_root(platform: LocalPlatform) -> None:
    root = platform.settings.storage_dir
    (root / "local/default").mkdir(parents=True)
    (root / "local/default/out").symlink_to("/etc")
    headers = {"Authorization": f"Bearer {platform.settings.token}"}
    base = f"{platform.api_url}/storage"
    async with aiohttp.ClientSession() as http:
        for path in ("local/default/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "local/default/out/passwd"):
            url = URL(f"{base}/{path}?op=GETFILESTATUS", encoded=True)
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 403, path
        create = URL(f"{base}/local/default/out/evil?op=CREATE", encoded=True)
        async with http.put(create, data=b"x", headers=headers) as resp:
            assert resp.status == 403


def test_local_path_maps_uris_under_the_root(tmp_path: Path) -> None:
    storage = Storage(tmp_path, "local")
    root = tmp_path.resolve()
    assert storage.local_path("storage://local/org/proj/a/b") == root / "org/proj/a/b"
    # URIs fold "..", so only a symlink can point outside.
    assert storage.local_path("storage://local/org/../../etc") == root / "etc"
    (tmp_path / "org").mkdir()
    (tmp_path / "org/link").symlink_to("/etc")
    for bad, why in (
        ("storage://other/org/proj/a", "not on cluster"),
        ("file:///etc", "not a storage:// URI"),
        ("storage://local/org/link/passwd", "outside the storage"),
    ):
        with pytest.raises(ValueError, match=why):
            storage.local_path(bad)
