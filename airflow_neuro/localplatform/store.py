"""Job records in SQLite, so that a restarted platform still knows every job it ran."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from .records import LIVE_STATUSES, Job

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    name TEXT,
    owner TEXT NOT NULL,
    project TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
"""


class JobStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Private whatever the umask; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        os.chmod(path, 0o600)
        # One connection used from the event loop thread only; writes are small.
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def save(self, job: Job) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO jobs (id, created_at, status, name, owner, project, record)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job.id, job.created_at.isoformat(), job.status, job.name, job.owner,
             job.project_name, json.dumps(job.to_record())),
        )  # fmt: skip

    def get(self, job_id: str) -> Job | None:
        row = self._db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_record(json.loads(row[0])) if row else None

    def newest_by_name(self, name: str, owner: str) -> Job | None:
        row = self._db.execute(
            "SELECT record FROM jobs WHERE name = ? AND owner = ? ORDER BY created_at DESC LIMIT 1",
            (name, owner),
        ).fetchone()
        return Job.from_record(json.loads(row[0])) if row else None

    def live(self) -> list[Job]:
        marks = ",".join("?" * len(LIVE_STATUSES))
        rows = self._db.execute(
            f"SELECT record FROM jobs WHERE status IN ({marks})", tuple(LIVE_STATUSES)
        )
        return [Job.from_record(json.loads(r[0])) for r in rows]

    def query(
        self,
        *,
        statuses: Iterable[str] = (),
        name: str | None = None,
        owners: Iterable[str] = (),
        projects: Iterable[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        reverse: bool = False,
    ) -> Iterator[Job]:
        clauses: list[str] = []
        params: list[str] = []
        for column, values in (("status", list(statuses)), ("owner", list(owners)),
                               ("project", list(projects))):  # fmt: skip
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if name is not None:
            clauses.append("name = ?")
            params.append(name)
        # ISO strings with the same UTC offset sort in time order.
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since.isoformat())
        if until is not None:
            clauses.append("created_at <= ?")
            params.append(until.isoformat())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if reverse else "ASC"
        sql = f"SELECT record FROM jobs {where} ORDER BY created_at {order}, id {order}"
        for (record,) in self._db.execute(sql, params):
            yield Job.from_record(json.loads(record))
