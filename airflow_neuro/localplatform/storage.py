"""Platform storage (`storage://cluster/org/project/path`) served from a directory.

The HTTP API is the WebHDFS-like one the SDK speaks: `/api/v1/storage/<org>/<project>/<path>`
with `?op=GETFILESTATUS|LISTSTATUS|MKDIRS|CREATE|WRITE|OPEN|DELETE|RENAME|GETDISKUSAGE`.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from aiohttp import web
from yarl import URL

PREFIX = "/api/v1/storage"
CHUNK = 1024 * 1024


class PathEscapes(ValueError):
    pass


def _os_error(e: OSError) -> web.HTTPException:
    code = errno.errorcode.get(e.errno or 0, "EIO")
    if e.errno == errno.ENOENT:
        return web.HTTPNotFound(
            text=json.dumps({"error": e.strerror or "Not found", "errno": code}),
            content_type="application/json",
        )
    return web.HTTPBadRequest(
        text=json.dumps({"error": e.strerror or str(e), "errno": code}),
        content_type="application/json",
    )


def _bad(message: str) -> web.HTTPException:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _file_status(path: Path, name: str) -> dict[str, Any]:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        kind = "SYMLINK"
    elif stat.S_ISDIR(info.st_mode):
        kind = "DIRECTORY"
    else:
        kind = "FILE"
    status: dict[str, Any] = {
        "path": name,
        "length": info.st_size if kind == "FILE" else 0,
        "modificationTime": int(info.st_mtime),
        "permission": "manage",  # one user owns everything here
        "type": kind,
    }
    if kind == "SYMLINK":
        status["target"] = os.readlink(path)
    return status


class Storage:
    def __init__(self, root: Path, cluster: str) -> None:
        self.root = root
        self.cluster = cluster
        root.mkdir(parents=True, exist_ok=True)
        self._real_root = os.path.realpath(root)

    def _resolve(self, relative: str) -> Path:
        """A path under the root, or PathEscapes: neither `..` nor a symlink may leave it."""
        parts = [p for p in relative.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise PathEscapes(f"'..' is not allowed in storage paths: {relative!r}")
        candidate = os.path.join(self._real_root, *parts)
        real = os.path.realpath(candidate)
        if os.path.commonpath([real, self._real_root]) != self._real_root:
            raise PathEscapes(f"{relative!r} leads outside the storage")
        return Path(candidate)

    def local_path(self, uri: str) -> Path:
        url = URL(uri)
        if url.scheme != "storage":
            raise ValueError(f"{uri!r} is not a storage:// URI")
        if url.host != self.cluster:
            raise ValueError(f"{uri!r} is not on cluster {self.cluster!r}")
        # yarl would fold "..": check the raw path.
        return self._resolve(url.raw_path)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", PREFIX + "/{path:.*}", self.handle),
            web.route("*", PREFIX, self.handle),
        ]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        op = request.query.get("op", "").upper()
        raw = request.match_info.get("path", "")
        try:
            path = self._resolve(raw)
        except PathEscapes as e:
            raise web.HTTPForbidden(
                text=json.dumps({"error": str(e)}), content_type="application/json"
            ) from None
        handler = {
            ("GET", "GETFILESTATUS"): self._stat,
            ("GET", "LISTSTATUS"): self._list,
            ("PUT", "MKDIRS"): self._mkdirs,
            ("PUT", "CREATE"): self._create,
            ("PATCH", "WRITE"): self._write,
            ("GET", "OPEN"): self._open,
            ("DELETE", "DELETE"): self._delete,
            ("POST", "RENAME"): self._rename,
            ("GET", "GETDISKUSAGE"): self._disk_usage,
        }.get((request.method, op))
        if handler is None:
            raise _bad(f"unsupported operation {request.method} op={op or '(none)'}")
        try:
            return await handler(request, path, raw)
        except OSError as e:
            raise _os_error(e) from None

    async def _stat(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        status = _file_status(path, "/" + raw.strip("/"))
        return web.json_response({"FileStatus": status})

    async def _list(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        entries = [_file_status(path / name, name) for name in sorted(os.listdir(path))]
        if "application/x-ndjson" not in request.headers.get("Accept", ""):
            return web.json_response({"FileStatuses": {"FileStatus": entries}})
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for entry in entries:
            await response.write(json.dumps({"FileStatus": entry}).encode() + b"\n")
        await response.write_eof()
        return response

    async def _mkdirs(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        path.mkdir(parents=True, exist_ok=True)
        return web.Response(status=201)

    async def _create(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            async for chunk in request.content.iter_chunked(CHUNK):
                f.write(chunk)
        return web.Response(status=201)

    async def _write(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        match = re.fullmatch(
            r"bytes (\d+)-(\d+)/(\d+|\*)", request.headers.get("Content-Range", "")
        )
        if match is None:
            raise _bad("WRITE needs a Content-Range header: bytes START-END/*")
        with open(path, "r+b") as f:
            f.seek(int(match.group(1)))
            async for chunk in request.content.iter_chunked(CHUNK):
                f.write(chunk)
        return web.Response(status=200)

    async def _open(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        size = path.stat().st_size
        start, end = 0, size - 1
        partial = request.http_range.start is not None or request.http_range.stop is not None
        if partial:
            rng = request.http_range
            start = rng.start or 0
            end = min(size, rng.stop) - 1 if rng.stop is not None else size - 1
            if start >= size and size > 0:
                raise web.HTTPRequestRangeNotSatisfiable(
                    headers={"Content-Range": f"bytes */{size}"}
                )
        response = web.StreamResponse(status=206 if partial else 200)
        response.content_type = "application/octet-stream"
        if partial:
            response.headers["Content-Range"] = f"bytes {start}-{max(end, start)}/{size}"
        response.content_length = max(0, end - start + 1)
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        with open(path, "rb") as f:
            f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                data = await loop.run_in_executor(None, f.read, min(CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
                await response.write(data)
        await response.write_eof()
        return response

    async def _delete(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        recursive = request.query.get("recursive", "false").lower() == "true"
        if path == Path(self._real_root):
            raise _bad("the storage root cannot be deleted")
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode):
            if recursive:
                await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, path)
            else:
                path.rmdir()  # ENOTEMPTY for a directory with entries, as the real server
        else:
            path.unlink()
        return web.Response(status=204)

    async def _rename(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        destination = request.query.get("destination")
        if not destination:
            raise _bad("RENAME needs a destination")
        try:
            target = self._resolve(destination)
        except PathEscapes as e:
            raise _bad(str(e)) from None
        if not os.path.lexists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        os.replace(path, target)
        return web.Response(status=204)

    async def _disk_usage(self, request: web.Request, path: Path, raw: str) -> web.StreamResponse:
        usage = shutil.disk_usage(self.root)
        return web.json_response({"total": usage.total, "used": usage.used, "free": usage.free})
