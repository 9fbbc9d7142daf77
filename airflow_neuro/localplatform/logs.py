"""Job output: raw bytes on disk, followed live by any number of readers.

A job writes its output straight into ``output.log``, so that it never depends on the
platform staying up to read a pipe. The platform follows the file (``poll``), and
``output.idx`` records when each new stretch of it was seen, which is what ``since`` and
``timestamps`` need, at one small record a stretch instead of one a line. Output written
while the platform was down (and the last stretch before) is stamped when a restarted
platform first sees it.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import struct
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

CHUNK = 256 * 1024
INDEX_RECORD = struct.Struct("<Qd")  # byte offset of a stretch, unix time it was seen
# Only the platform's user reads a job's files: logs hold whatever the job printed.
PRIVATE = 0o600


def _open_private(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
    os.fchmod(fd, PRIVATE)  # whatever the umask, and for files made before
    return fd


class JobLog:
    def __init__(self, directory: Path, *, finished: bool) -> None:
        self.path = directory / "output.log"
        self.index_path = directory / "output.idx"
        self.finished = finished
        self._offsets: list[int] = []
        self._times: list[float] = []
        self._size = 0
        self._changed = asyncio.Event()
        self._index: int | None = None
        if not finished:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(_open_private(self.path, os.O_WRONLY | os.O_APPEND))
            self._index = _open_private(self.index_path, os.O_WRONLY | os.O_APPEND)
        self._load_index()

    def _load_index(self) -> None:
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError:
            raw = b""
        for offset, at in INDEX_RECORD.iter_unpack(raw[: len(raw) - len(raw) % INDEX_RECORD.size]):
            self._offsets.append(offset)
            self._times.append(at)
        if self.finished:
            self._size = self.path.stat().st_size if self.path.exists() else 0
        else:
            # Picked up again after a restart, the last stretch seen may have grown while
            # the platform was down, by how much is not known: poll stamps it anew.
            self._size = self._offsets[-1] if self._offsets else 0

    def poll(self, at: float | None = None) -> None:
        """Take note of output that has arrived since the last look."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size <= self._size or self._index is None:
            return
        now = time.time() if at is None else at
        os.write(self._index, INDEX_RECORD.pack(self._size, now))
        self._offsets.append(self._size)
        self._times.append(now)
        self._size = size
        self._notify()

    def finish(self) -> None:
        self.poll()
        if self._index is not None:
            os.close(self._index)
            self._index = None
        self.finished = True
        self._notify()

    def detach(self) -> None:
        """Stop following, leaving the job's output to a platform that picks it up later."""
        if self._index is not None:
            os.close(self._index)
            self._index = None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_beyond(self, offset: int) -> None:
        while self._size <= offset and not self.finished:
            await self._changed.wait()

    def time_at(self, offset: int) -> float:
        """When the byte at ``offset`` arrived (the arrival of its chunk)."""
        index = bisect.bisect_right(self._offsets, offset) - 1
        return self._times[max(index, 0)] if self._times else 0.0

    async def chunks(self) -> AsyncIterator[tuple[int, bytes]]:
        """Every byte of output with its offset, following the log until the job is done."""
        offset = 0
        with open(self.path, "rb") as f:
            while True:
                done = self.finished
                f.seek(offset)
                data = f.read(CHUNK)
                if data:
                    yield offset, data
                    offset += len(data)
                elif done:
                    return
                else:
                    await self._wait_beyond(offset)

    async def read(
        self, *, since: datetime | None = None, timestamps: bool = False
    ) -> AsyncIterator[bytes]:
        """The output as the log endpoints send it: raw, or line by line when filtered."""
        if since is None and not timestamps:
            async for _, data in self.chunks():
                yield data
            return
        since_ts = since.timestamp() if since is not None else None
        pending = b""
        pending_at = 0
        async for offset, data in self.chunks():
            if not pending:
                pending_at = offset
            pending += data
            lines = pending.split(b"\n")
            pending = lines.pop()
            out = []
            start = pending_at
            for line in lines:
                rendered = self._render(line + b"\n", start, since_ts, timestamps)
                if rendered:
                    out.append(rendered)
                start += len(line) + 1
            pending_at = start
            if out:
                yield b"".join(out)
        if pending:
            rendered = self._render(pending, pending_at, since_ts, timestamps)
            if rendered:
                yield rendered

    def _render(self, line: bytes, offset: int, since: float | None, stamps: bool) -> bytes:
        at = self.time_at(offset)
        if since is not None and at < since:
            return b""
        if not stamps:
            return line
        stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return stamp.encode() + b" " + line
