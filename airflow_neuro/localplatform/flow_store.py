"""Flow records in SQLite: the projects and live jobs apolo-flow keeps on the platform.

They sit in the platform's database next to the job records, so a restarted platform
still knows each flow project's id (apolo-flow finds a project by name on every run).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RecordExists, RecordNotFound
from .records import utcnow

# org_name is stored as '' for "no org": SQLite treats NULLs as distinct in UNIQUE keys.
SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    cluster TEXT NOT NULL,
    org_name TEXT NOT NULL,
    project_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (name, project_name, cluster, org_name)
);
CREATE TABLE IF NOT EXISTS flow_live_jobs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    yaml_id TEXT NOT NULL,
    multi INTEGER NOT NULL,
    tags TEXT NOT NULL,
    raw_id TEXT NOT NULL,
    UNIQUE (project_id, yaml_id)
);
"""
_PROJECT_COLUMNS = "id, name, owner, cluster, org_name, project_name"
_LIVE_JOB_COLUMNS = "id, project_id, yaml_id, multi, tags, raw_id"


@dataclass(frozen=True)
class FlowProject:
    """A flow project: the `id` of a `.apolo/project.yml` within one platform project."""

    id: str
    name: str
    owner: str
    cluster: str
    org_name: str | None
    project_name: str

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "cluster": self.cluster,
            "org_name": self.org_name,
            "project_name": self.project_name,
        }


@dataclass(frozen=True)
class LiveJobRecord:
    """A live job of a flow project: its yaml id and the tags its platform jobs carry."""

    id: str
    project_id: str
    yaml_id: str
    multi: bool
    tags: list[str]
    raw_id: str = ""

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "yaml_id": self.yaml_id,
            "project_id": self.project_id,
            "multi": self.multi,
            "tags": self.tags,
            "raw_id": self.raw_id,
        }


def _project(row: tuple[Any, ...]) -> FlowProject:
    id_, name, owner, cluster, org_name, project_name = row
    return FlowProject(id_, name, owner, cluster, org_name or None, project_name)


def _live_job(row: tuple[Any, ...]) -> LiveJobRecord:
    id_, project_id, yaml_id, multi, tags, raw_id = row
    return LiveJobRecord(id_, project_id, yaml_id, bool(multi), json.loads(tags), raw_id)


class FlowStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Its own connection to the platform's database, used from the event loop only.
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- projects ----------------------------------------------------------------------------

    def create_project(
        self, *, name: str, owner: str, cluster: str, org_name: str | None, project_name: str
    ) -> FlowProject:
        # Ids as the flow API makes them: "<kind>-<uuid4>".
        project = FlowProject(
            f"projects-{uuid.uuid4()}", name, owner, cluster, org_name, project_name
        )
        try:
            self._db.execute(
                f"INSERT INTO flow_projects ({_PROJECT_COLUMNS}, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (project.id, name, owner, cluster, org_name or "", project_name,
                 utcnow().isoformat()),
            )  # fmt: skip
        except sqlite3.IntegrityError:
            raise RecordExists("Project with such name exists") from None
        return project

    def project(self, project_id: str) -> FlowProject:
        row = self._db.execute(
            f"SELECT {_PROJECT_COLUMNS} FROM flow_projects WHERE id = ?", (project_id,)
        ).fetchone()
        if row is None:
            raise RecordNotFound(f"no such flow project {project_id}")
        return _project(row)

    def project_by_name(
        self, *, name: str, project_name: str, cluster: str, org_name: str | None
    ) -> FlowProject:
        row = self._db.execute(
            f"SELECT {_PROJECT_COLUMNS} FROM flow_projects"
            " WHERE name = ? AND project_name = ? AND cluster = ? AND org_name = ?",
            (name, project_name, cluster, org_name or ""),
        ).fetchone()
        if row is None:
            raise RecordNotFound(
                f"no flow project {name!r} in cluster {cluster!r}, org {org_name!r},"
                f" project {project_name!r}"
            )
        return _project(row)

    def projects(
        self,
        *,
        name: str | None = None,
        owner: str | None = None,
        cluster: str | None = None,
        org_name: str | None = None,
        any_org: bool = True,
        project_name: str | None = None,
    ) -> Iterator[FlowProject]:
        clauses: list[str] = []
        params: list[str] = []
        for column, value in (("name", name), ("owner", owner), ("cluster", cluster),
                              ("project_name", project_name)):  # fmt: skip
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if not any_org:
            clauses.append("org_name = ?")
            params.append(org_name or "")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_PROJECT_COLUMNS} FROM flow_projects {where} ORDER BY created_at, id"
        for row in self._db.execute(sql, params):
            yield _project(row)

    def delete_project(self, project_id: str) -> None:
        # A project's live jobs go with it, as the flow API's foreign keys cascade.
        self._db.execute("BEGIN")
        try:
            self._db.execute("DELETE FROM flow_live_jobs WHERE project_id = ?", (project_id,))
            self._db.execute("DELETE FROM flow_projects WHERE id = ?", (project_id,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- live jobs ---------------------------------------------------------------------------

    def replace_live_job(
        self, *, project_id: str, yaml_id: str, multi: bool, tags: list[str], raw_id: str
    ) -> LiveJobRecord:
        """Creates the project's live job of that yaml id, or overwrites it keeping its id."""
        row = self._db.execute(
            "SELECT id FROM flow_live_jobs WHERE project_id = ? AND yaml_id = ?",
            (project_id, yaml_id),
        ).fetchone()
        job_id = row[0] if row else f"live-job-{uuid.uuid4()}"
        self._db.execute(
            f"INSERT OR REPLACE INTO flow_live_jobs ({_LIVE_JOB_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, project_id, yaml_id, int(multi), json.dumps(tags), raw_id),
        )
        return LiveJobRecord(job_id, project_id, yaml_id, multi, tags, raw_id)

    def live_jobs(self, project_id: str) -> list[LiveJobRecord]:
        rows = self._db.execute(
            f"SELECT {_LIVE_JOB_COLUMNS} FROM flow_live_jobs WHERE project_id = ? ORDER BY yaml_id",
            (project_id,),
        )
        return [_live_job(row) for row in rows]
