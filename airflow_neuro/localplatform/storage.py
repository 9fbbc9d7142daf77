"""Platform storage served from a local directory.

The SDK speaks a WebHDFS-like API: ``/api/v1/storage/<org>/<project>/<path>?op=...`` with
GETFILESTATUS, LISTSTATUS, MKDIRS, CREATE, WRITE, OPEN, DELETE, RENAME and GETDISKUSAGE.
Where a path lands under the root is decided in storage_paths.py; the errors handlers raise
are answered by errors.py, file-system errors with their errno.
"""

from __future__ import annotations

import asyncio
import errno
import io
import itertools
import json
import os
import re
import shutil
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import StreamReader, web

from .errors import BadRequest, PathEscapes, os_error_body
from .params import query_flag
from .storage_paths import StoragePaths, display_path, split_path

PREFIX = "/api/v1/storage"
NDJSON = "application/x-ndjson"
CHUNK = 2**20  # bytes per thread hop when reading or writing file data
BATCH = 256  # directory entries per thread hop when listing or removing

# An op-less request gets the method's natural op, as on the real server.
DEFAULT_OPS = {
    "GET": "OPEN",
    "PUT": "CREATE",
    "PATCH": "WRITE",
    "POST": "RENAME",
    "DELETE": "DELETE",
}
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

T = TypeVar("T")
Handler = Callable[[web.Request, list[str]], Awaitable[web.StreamResponse]]


def _json_line(item: dict[str, Any]) -> bytes:
    return json.dumps(item).encode() + b"\n"


def _file_status(path: Path, name: str) -> dict[str, Any]:
    """The status of the entry itself: a symlink is reported as one, never followed."""
    info = os.lstat(path)
    target: str | None = None
    if stat.S_ISLNK(info.st_mode):
        kind = "SYMLINK"
        target = os.readlink(path)
    elif stat.S_ISDIR(info.st_mode):
        kind = "DIRECTORY"
    else:
        kind = "FILE"  # the real server calls every other kind of entry a file, too
    status: dict[str, Any] = {
        "path": name,
        "length": 0 if kind == "DIRECTORY" else info.st_size,
        "modificationTime": int(info.st_mtime),
        "permission": "manage",  # one user owns everything here
        "type": kind,
    }
    if target is not None:
        status["target"] = target
    return status


def _scan(path: Path) -> Generator[dict[str, Any], None, None]:
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                yield _file_status(Path(entry.path), entry.name)
            except FileNotFoundError:
                continue  # removed while listing


def _remove(path: Path, name: str) -> Generator[dict[str, Any], None, None]:
    """Removes an entry (a whole tree for a directory), reporting each one once it is gone."""
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        os.unlink(path)  # a symlink goes, its target stays
        yield {"path": name, "is_dir": False}
        return
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield from _remove_dir(parent, path.name, name)
    finally:
        os.close(parent)


def _remove_dir(parent: int, entry: str, name: str) -> Generator[dict[str, Any], None, None]:
    # Relative to directory descriptors, never following a symlink: a directory swapped for a
    # link during the walk makes the open fail instead of emptying the link's target.
    fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    try:
        with os.scandir(fd) as entries:
            children = [(child.name, child.is_dir(follow_symlinks=False)) for child in entries]
        for child, is_dir in children:
            if is_dir:
                yield from _remove_dir(fd, child, f"{name}/{child}")
            else:
                os.unlink(child, dir_fd=fd)
                yield {"path": f"{name}/{child}", "is_dir": False}
    finally:
        os.close(fd)
    os.rmdir(entry, dir_fd=parent)
    yield {"path": name, "is_dir": True}


async def _in_thread(items: Generator[T, None, None]) -> AsyncIterator[T]:
    """Runs a blocking generator in worker threads, a batch of items per hop."""
    try:
        while True:
            batch = await asyncio.to_thread(lambda: list(itertools.islice(items, BATCH)))
            if not batch:
                return
            for item in batch:
                yield item
    finally:
        items.close()


def _open_for_reading(path: Path) -> tuple[io.FileIO, int]:
    # O_NONBLOCK: opening a FIFO must not hang; O_NOFOLLOW: the path was already resolved.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "Not a regular file")
        return io.FileIO(fd, "r"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def _open_for_writing(path: Path, *, create: bool) -> io.FileIO:
    flags = os.O_WRONLY | os.O_NOFOLLOW
    if create:
        flags |= os.O_CREAT | os.O_TRUNC
    return io.FileIO(os.open(path, flags, 0o666), "w")


async def _receive(content: StreamReader, file: io.FileIO, limit: int | None = None) -> None:
    """Copies a request body to a file, a bounded buffer at a time."""
    buffer = bytearray()
    received = 0
    async for chunk in content.iter_any():
        if limit is not None:
            chunk = chunk[: max(0, limit - received)]
        received += len(chunk)
        buffer += chunk
        if len(buffer) >= CHUNK:
            await asyncio.to_thread(file.write, buffer)
            buffer.clear()
    if buffer:
        await asyncio.to_thread(file.write, buffer)


class Storage:
    def __init__(self, root: Path, cluster: str) -> None:
        self.paths = StoragePaths(root, cluster)
        self._handlers: dict[tuple[str, str], Handler] = {
            ("GET", "GETFILESTATUS"): self._stat,
            ("GET", "LISTSTATUS"): self._list,
            ("PUT", "MKDIRS"): self._mkdirs,
            ("PUT", "CREATE"): self._create,
            ("PATCH", "WRITE"): self._write,
            ("GET", "OPEN"): self._open,
            ("DELETE", "DELETE"): self._delete,
            ("POST", "RENAME"): self._rename,
            ("GET", "GETDISKUSAGE"): self._disk_usage,
        }

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route(method, path, self._handle)
            for method in DEFAULT_OPS
            for path in (PREFIX, PREFIX + "/{path:.*}")
        ]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        op = request.query.get("op", DEFAULT_OPS[request.method]).upper()
        handler = self._handlers.get((request.method, op))
        if handler is None:
            raise BadRequest(f"Illegal operation: {request.method} op={op}")
        return await handler(request, split_path(request.match_info.get("path", "")))

    async def _stat(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        status = _file_status(self.paths.locate(parts, follow=False), display_path(parts))
        return web.json_response({"FileStatus": status})

    async def _list(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        path = self.paths.locate(parts, follow=True)
        if not stat.S_ISDIR(os.stat(path).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        # Entries carry bare names here, unlike GETFILESTATUS: the SDK joins them to the URI.
        statuses = ({"FileStatus": status} async for status in _in_thread(_scan(path)))
        if NDJSON in request.headers.get("Accept", ""):
            return await _stream_ndjson(request, statuses)
        listing = [item["FileStatus"] async for item in statuses]
        return web.json_response({"FileStatuses": {"FileStatus": listing}})

    async def _mkdirs(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        # Always parents and exist_ok: the SDK checks those itself with GETFILESTATUS first.
        # An existing file is still EEXIST.
        self.paths.locate(parts, follow=True).mkdir(parents=True, exist_ok=True)
        return web.Response(status=201)

    async def _create(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        path = self.paths.locate(parts, follow=True)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Destination is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)  # as the real server does
        file = await asyncio.to_thread(_open_for_writing, path, create=True)
        try:
            await _receive(request.content, file)
        finally:
            await asyncio.to_thread(file.close)
        return web.Response(status=201)

    async def _write(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        # upload_file sends the first MiB with CREATE and the rest as WRITEs at offsets.
        match = CONTENT_RANGE.fullmatch(request.headers.get("Content-Range", ""))
        if match is None or int(match[2]) < int(match[1]):
            raise ValueError("WRITE needs a header Content-Range: bytes START-END/*")
        start, end = int(match[1]), int(match[2])
        path = self.paths.locate(parts, follow=True)
        file = await asyncio.to_thread(_open_for_writing, path, create=False)
        try:
            file.seek(start)
            await _receive(request.content, file, limit=end - start + 1)
        finally:
            await asyncio.to_thread(file.close)
        return web.Response(status=200)

    async def _open(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        path = self.paths.locate(parts, follow=True)
        file, size = await asyncio.to_thread(_open_for_reading, path)
        try:
            try:
                whole = request.http_range.start is None and request.http_range.stop is None
                start, stop, _ = request.http_range.indices(size)
            except ValueError:
                whole, start, stop = False, 0, 0
            if not whole and stop <= start:
                raise web.HTTPRequestRangeNotSatisfiable(
                    headers={"Content-Range": f"bytes */{size}"}
                )
            response = web.StreamResponse(status=200 if whole else 206)
            response.content_type = "application/octet-stream"
            response.content_length = stop - start
            response.headers["Accept-Ranges"] = "bytes"
            if not whole:
                # The SDK checks that the range it gets starts where it asked.
                response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
            await response.prepare(request)
            file.seek(start)
            remaining = stop - start
            while remaining > 0:
                data = await asyncio.to_thread(file.read, min(CHUNK, remaining))
                if not data:
                    break  # truncated meanwhile: the client sees a short body
                await response.write(data)
                remaining -= len(data)
            await response.write_eof()
            return response
        finally:
            await asyncio.to_thread(file.close)

    async def _delete(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        # The SDK always sends it; without it nothing is removed recursively by accident.
        recursive = query_flag(request, "recursive", strict=True)
        if not parts:
            raise PathEscapes("the storage root cannot be deleted")
        path = self.paths.locate(parts, follow=False)
        if stat.S_ISDIR(os.lstat(path).st_mode) and not recursive:
            # Even when empty, as the real server: the SDK's rm without recursive is for files.
            raise IsADirectoryError(errno.EISDIR, "Is a directory, use recursive remove")
        removed = _in_thread(_remove(path, display_path(parts)))
        if NDJSON in request.headers.get("Accept", ""):
            # Streamed, one line per removed entry: the SDK reports them as progress.
            return await _stream_ndjson(request, removed)
        async for _ in removed:
            pass
        return web.Response(status=204)

    async def _rename(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        destination = request.query.get("destination")
        if not destination:
            raise ValueError("RENAME needs a destination")
        # The SDK sends /<org>/<project>/<path>; a relative one is taken from the source's
        # directory, as on the real server.
        target = split_path(destination)
        if not destination.startswith("/"):
            target = parts[:-1] + target
        if not parts or not target:
            raise PathEscapes("the storage root cannot be renamed or replaced")
        source = self.paths.locate(parts, follow=False)
        os.lstat(source)  # a missing source is the 404, whatever the destination
        os.rename(source, self.paths.locate(target, follow=False))
        return web.Response(status=204)

    async def _disk_usage(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        # The filesystem holding the path; a project that has no files yet still has room.
        path = self.paths.locate(parts, follow=True)
        while path != self.paths.root and not path.exists():
            path = path.parent
        usage = await asyncio.to_thread(shutil.disk_usage, path)
        return web.json_response({"total": usage.total, "used": usage.used, "free": usage.free})


async def _stream_ndjson(
    request: web.Request, items: AsyncIterator[dict[str, Any]]
) -> web.StreamResponse:
    """One JSON object per line. An error before the first line is an HTTP error; after it,
    a final {"error", "errno"} line, which the SDK raises as an OSError."""
    response = web.StreamResponse(headers={"Content-Type": NDJSON})
    try:
        async for item in items:
            if not response.prepared:
                await response.prepare(request)
            await response.write(_json_line(item))
    except OSError as e:
        if not response.prepared:
            raise
        await response.write(_json_line(os_error_body(e)))
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof()
    return response
