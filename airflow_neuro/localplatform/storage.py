"""Platform storage served from a local directory.

The SDK speaks a WebHDFS-like API: ``/api/v1/storage/<org>/<project>/<path>?op=...`` with
GETFILESTATUS, LISTSTATUS, MKDIRS, CREATE, WRITE, OPEN, DELETE, RENAME and GETDISKUSAGE.
Where a path lands under the root is decided in storage_paths.py, and every entry is reached
through safe_fs.py, from a descriptor of the root and never through a symlink: jobs mount
storage folders read-write and can swap a directory for a symlink at any moment. The errors
handlers raise are answered by errors.py, file-system errors with their errno.

Symlinks inside storage (only a job can make one) are entries that are never followed: stat
and listings report them as they are (type SYMLINK, with their target), deleting or renaming
one acts on the link itself, and reading, writing, listing or making anything through one is
refused with 403.
"""

from __future__ import annotations

import asyncio
import errno
import io
import itertools
import json
import os
import re
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import StreamReader, web

from .errors import BadRequest, PathEscapes, os_error_body
from .params import query_flag
from .safe_fs import DIR_FLAGS, Owner, RootedTree, open_entry
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
CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)")
# Beyond any file a file system here holds; further offsets would overflow a seek.
MAX_OFFSET = 2**62

T = TypeVar("T")
Handler = Callable[[web.Request, list[str]], Awaitable[web.StreamResponse]]


def _json_line(item: dict[str, Any]) -> bytes:
    return json.dumps(item).encode() + b"\n"


def _file_status(info: os.stat_result, name: str, target: str | None = None) -> dict[str, Any]:
    """The status of an entry itself (lstat): a symlink is reported as one, never followed."""
    if stat.S_ISLNK(info.st_mode):
        kind = "SYMLINK"
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


def _entry_status(parent: int, entry: str, name: str) -> dict[str, Any]:
    info = os.stat(entry, dir_fd=parent, follow_symlinks=False)
    target = None
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.readlink(entry, dir_fd=parent)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                raise
            # Replaced or removed since the stat: still reported as what the stat saw.
    return _file_status(info, name, target)


def _scan(tree: RootedTree, parts: list[str]) -> Generator[dict[str, Any], None, None]:
    with tree.directory(parts) as fd, os.scandir(fd) as entries:
        for entry in entries:
            try:
                yield _entry_status(fd, entry.name, entry.name)
            except FileNotFoundError:
                continue  # removed while listing


def _remove(
    tree: RootedTree, parts: list[str], recursive: bool
) -> Generator[dict[str, Any], None, None]:
    """Removes an entry (a whole tree for a directory), reporting each one once it is gone.

    Nothing is followed: a symlink goes, its target stays.
    """
    name = display_path(parts)
    with tree.parent(parts) as (parent, entry):
        # Looked at before anything streams: a missing entry is the request's 404.
        info = os.stat(entry, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode) and not recursive:
            # Even when empty, as the real server: the SDK's rm without recursive is for files.
            raise IsADirectoryError(errno.EISDIR, "Is a directory, use recursive remove")
        if stat.S_ISDIR(info.st_mode):
            yield from _remove_dir(parent, entry, name)
        else:
            os.unlink(entry, dir_fd=parent)
            yield {"path": name, "is_dir": False}


def _remove_dir(parent: int, entry: str, name: str) -> Generator[dict[str, Any], None, None]:
    # Relative to directory descriptors, never following a symlink: a directory swapped for a
    # link during the walk is removed as the link it has become, its target left alone.
    try:
        fd = os.open(entry, DIR_FLAGS, dir_fd=parent)
    except OSError as e:
        if e.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        os.unlink(entry, dir_fd=parent)
        yield {"path": name, "is_dir": False}
        return
    try:
        with os.scandir(fd) as entries:
            children = [(child.name, child.is_dir(follow_symlinks=False)) for child in entries]
        for child, is_dir in children:
            if not is_dir:
                try:
                    os.unlink(child, dir_fd=fd)
                except IsADirectoryError:
                    is_dir = True  # became a directory since the listing
                except FileNotFoundError:
                    continue  # removed meanwhile
                else:
                    yield {"path": f"{name}/{child}", "is_dir": False}
            if is_dir:
                yield from _remove_dir(fd, child, f"{name}/{child}")
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


def _regular_file(fd: int, mode: str) -> io.FileIO:
    """A file object for ``fd``, which must be a regular file; closes ``fd`` otherwise."""
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "Not a regular file")
        return io.FileIO(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def _open_for_reading(tree: RootedTree, parts: list[str]) -> io.FileIO:
    if not parts:
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    with tree.parent(parts) as (parent, name):
        # O_NONBLOCK: opening a FIFO a job made must not hang.
        fd = open_entry(parent, name, os.O_RDONLY | os.O_NONBLOCK, parts)
    return _regular_file(fd, "r")


def _open_for_writing(tree: RootedTree, parts: list[str], *, create: bool) -> io.FileIO:
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "Destination is a directory")
    # O_NONBLOCK: opening a FIFO is ENXIO while nothing reads it, not a hang.
    flags = os.O_WRONLY | os.O_NONBLOCK
    # CREATE makes missing parents, as the real server does.
    with tree.parent(parts, create=create) as (parent, name):
        try:
            if create:
                fd = tree.create_file(parent, name, parts, flags)
            else:
                fd = open_entry(parent, name, flags, parts)
        except IsADirectoryError:
            raise IsADirectoryError(errno.EISDIR, "Destination is a directory") from None
    return _regular_file(fd, "w")


def _quoted(header: str) -> str:
    return repr(header if len(header) <= 64 else header[:64] + "...")


def _offset(text: str, header: str) -> int:
    # Measured as text first: int() of thousands of digits is an error of its own.
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_OFFSET)) or int(digits) > MAX_OFFSET:
        raise BadRequest(f"Content-Range: {_quoted(header)} has an offset beyond {MAX_OFFSET}")
    return int(digits)


def _content_range(header: str | None) -> tuple[int, int]:
    """START and END (inclusive) of WRITE's ``Content-Range: bytes START-END/*``."""
    if header is None:
        raise BadRequest("WRITE needs a header Content-Range: bytes START-END/*")
    match = CONTENT_RANGE.fullmatch(header)
    if match is None:
        raise BadRequest(
            f"Content-Range: {_quoted(header)} is not 'bytes START-END/*' with byte offsets"
        )
    start, end = _offset(match[1], header), _offset(match[2], header)
    if end < start:
        raise BadRequest(f"Content-Range: {_quoted(header)} ends before it starts")
    return start, end


def _disk_usage(tree: RootedTree, parts: list[str]) -> dict[str, int]:
    # The file system holding the path; a project that has no files yet still has room.
    with tree.nearest_existing(parts) as fd:
        vfs = os.statvfs(fd)
    # As shutil.disk_usage counts them.
    return {
        "total": vfs.f_blocks * vfs.f_frsize,
        "used": (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize,
        "free": vfs.f_bavail * vfs.f_frsize,
    }


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
    """The storage API over ``root``.

    :param root: the directory storage is served from.
    :param cluster: the cluster storage:// URIs name.
    :param owner: (uid, gid) to give every file and directory the API makes to, when jobs
        run as that user rather than as the platform's; None leaves them as made.
    """

    def __init__(self, root: Path, cluster: str, owner: Owner | None = None) -> None:
        self.paths = StoragePaths(root, cluster, owner)
        self._tree = self.paths.tree
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
        if not parts:
            with self._tree.directory(parts) as fd:
                status = _file_status(os.fstat(fd), display_path(parts))
        else:
            with self._tree.parent(parts) as (parent, name):
                status = _entry_status(parent, name, display_path(parts))
        return web.json_response({"FileStatus": status})

    async def _list(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        # Entries carry bare names here, unlike GETFILESTATUS: the SDK joins them to the URI.
        statuses = ({"FileStatus": status} async for status in _in_thread(_scan(self._tree, parts)))
        if NDJSON in request.headers.get("Accept", ""):
            return await _stream_ndjson(request, statuses)
        listing = [item["FileStatus"] async for item in statuses]
        return web.json_response({"FileStatuses": {"FileStatus": listing}})

    async def _mkdirs(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        # Always parents and exist_ok: the SDK checks those itself with GETFILESTATUS first.
        # An existing file is still EEXIST.
        with self._tree.directory(parts, create=True):
            pass
        return web.Response(status=201)

    async def _create(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        file = await asyncio.to_thread(_open_for_writing, self._tree, parts, create=True)
        try:
            await _receive(request.content, file)
        finally:
            await asyncio.to_thread(file.close)
        return web.Response(status=201)

    async def _write(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        # upload_file sends the first MiB with CREATE and the rest as WRITEs at offsets.
        start, end = _content_range(request.headers.get("Content-Range"))
        file = await asyncio.to_thread(_open_for_writing, self._tree, parts, create=False)
        try:
            file.seek(start)
            await _receive(request.content, file, limit=end - start + 1)
        finally:
            await asyncio.to_thread(file.close)
        return web.Response(status=200)

    async def _open(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        file = await asyncio.to_thread(_open_for_reading, self._tree, parts)
        try:
            size = os.fstat(file.fileno()).st_size
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
                    # Truncated meanwhile. The length was promised already: only a closed
                    # connection tells the client its body is short (kept alive, it would
                    # wait for the rest forever).
                    response.force_close()
                    break
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
        removed = _in_thread(_remove(self._tree, parts, recursive))
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
        with self._tree.parent(parts) as (source_dir, source):
            # A missing source is the 404, whatever the destination.
            os.stat(source, dir_fd=source_dir, follow_symlinks=False)
            with self._tree.parent(target) as (target_dir, name):
                # rename(2) acts on both final entries themselves: a symlink is moved or
                # replaced, never followed.
                os.rename(source, name, src_dir_fd=source_dir, dst_dir_fd=target_dir)
        return web.Response(status=204)

    async def _disk_usage(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        return web.json_response(await asyncio.to_thread(_disk_usage, self._tree, parts))


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
