"""Job output: raw bytes on disk, followed live by any number of readers.

Each job's output is kept whole in ``output.log``; ``output.idx`` records when each chunk
arrived, which is what ``since`` and ``timestamps`` need, at one small record a chunk
instead of one a line.
"""

from __future__ import annotations

import asyncio
import bisect
import struct
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

CHUNK = 256 * 1024
INDEX_RECORD = struct.Struct("<Qd")  # byte offset of a chunk, unix time it arrived


class JobLog:
    def __init__(self, directory: Path, *, finished: bool) -> None:
        self.path = directory / "output.log"
        self.index_path = directory / "output.idx"
        self.finished = finished
        self._offsets: list[int] = []
        self._times: list[float] = []
        self._size = 0
        self._changed = asyncio.Event()
        self._out = self._index = None
        if finished:
            self._load_index()
        else:
            directory.mkdir(parents=True, exist_ok=True)
            # Unbuffered, so that a reader sees every byte as soon as it is appended.
            self._out = open(self.path, "ab", buffering=0)  # noqa: SIM115
            self._index = open(self.index_path, "ab", buffering=0)  # noqa: SIM115

    def _load_index(self) -> None:
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError:
            raw = b""
        for offset, at in INDEX_RECORD.iter_unpack(raw[: len(raw) - len(raw) % INDEX_RECORD.size]):
            self._offsets.append(offset)
            self._times.append(at)
        self._size = self.path.stat().st_size if self.path.exists() else 0

    def append(self, data: bytes, at: float) -> None:
        assert self._out is not None
        assert self._index is not None
        self._index.write(INDEX_RECORD.pack(self._size, at))
        self._out.write(data)
        self._offsets.append(self._size)
        self._times.append(at)
        self._size += len(data)
        self._notify()

    def finish(self) -> None:
        for f in (self._out, self._index):
            if f is not None:
                f.close()
        self._out = self._index = None
        self.finished = True
        self._notify()

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

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while data := await stream.read(CHUNK):
            self.append(data, time.time())

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
