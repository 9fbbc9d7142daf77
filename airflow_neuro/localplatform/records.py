"""A job as the platform stores it, and its JSON form as the SDK reads it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
LIVE_STATUSES = frozenset({PENDING, RUNNING})
FINISHED_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELLED})
ALL_STATUSES = LIVE_STATUSES | FINISHED_STATUSES | {"suspended"}
# Joins a job's name and owner into the address all jobs of that name share. Names cannot
# contain it nor start with "job-", so such an address is never taken for a job id.
NAME_OWNER_SEPARATOR = "--"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class Volume:
    src_storage_uri: str
    dst_path: str
    read_only: bool = False


@dataclass
class StatusItem:
    status: str
    transition_time: datetime
    reason: str | None = None
    description: str | None = None
    exit_code: int | None = None

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "status": self.status,
            "transition_time": iso(self.transition_time),
            "reason": self.reason,
            "description": self.description,
        }
        if self.exit_code is not None:
            item["exit_code"] = self.exit_code
        return item


@dataclass
class Job:
    """Everything a job request carried, plus what happened to it."""

    id: str
    owner: str
    cluster_name: str
    org_name: str
    project_name: str
    image: str
    cpu: float
    memory: int
    created_at: datetime
    preset_name: str | None = None
    name: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    command: str | None = None
    entrypoint: str | None = None
    working_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[Volume] = field(default_factory=list)
    http_port: int | None = None
    http_requires_auth: bool = False
    tty: bool = False
    shm: bool = False
    max_run_time_minutes: int | None = None
    schedule_timeout: float | None = None
    restart_policy: str = "never"
    priority: str = "normal"
    privileged: bool = False
    pass_config: bool = False
    scheduler_enabled: bool = False
    statuses: list[StatusItem] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None

    @property
    def current(self) -> StatusItem:
        return self.statuses[-1]

    @property
    def status(self) -> str:
        return self.current.status

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    def transition(
        self,
        status: str,
        reason: str | None = None,
        description: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        now = utcnow()
        self.statuses.append(StatusItem(status, now, reason, description, exit_code))
        if status == RUNNING and self.started_at is None:
            self.started_at = now
        if status in FINISHED_STATUSES:
            self.finished_at = now
            self.exit_code = exit_code

    def run_time_seconds(self) -> float:
        if self.started_at is None:
            return 0.0
        end = self.finished_at or utcnow()
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def host_segment_named(self) -> str | None:
        """``<name>--<owner>``: stays the same across redeploys of a name, unlike the id."""
        if self.name is None:
            return None
        return f"{self.name}{NAME_OWNER_SEPARATOR}{self.owner}"

    @property
    def internal_hostname(self) -> str:
        return f"{self.id}.{self.project_name}"

    @property
    def internal_hostname_named(self) -> str | None:
        named = self.host_segment_named
        return f"{named}.{self.project_name}" if named is not None else None

    def uri(self) -> str:
        return f"job://{self.cluster_name}/{self.org_name}/{self.project_name}/{self.id}"

    def to_api(self, base_url: str) -> dict[str, Any]:
        resources: dict[str, Any] = {"cpu": self.cpu, "memory": self.memory}
        if self.shm:
            resources["shm"] = True
        container: dict[str, Any] = {"image": self.image, "resources": resources, "env": self.env}
        for key in ("command", "entrypoint", "working_dir"):
            if getattr(self, key) is not None:
                container[key] = getattr(self, key)
        if self.volumes:
            container["volumes"] = [dataclasses.asdict(v) for v in self.volumes]
        if self.http_port is not None:
            container["http"] = {"port": self.http_port, "requires_auth": self.http_requires_auth}
        if self.tty:
            container["tty"] = True
        current = self.current
        history: dict[str, Any] = {
            "status": current.status,
            "reason": current.reason,
            "description": current.description,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "run_time_seconds": self.run_time_seconds(),
            "restarts": 0,
        }
        if self.exit_code is not None:
            history["exit_code"] = self.exit_code
        body: dict[str, Any] = {
            "id": self.id,
            "owner": self.owner,
            "cluster_name": self.cluster_name,
            "org_name": self.org_name,
            "project_name": self.project_name,
            "namespace": "local",
            "status": current.status,
            "statuses": [s.to_api() for s in self.statuses],
            "history": history,
            "container": container,
            "uri": self.uri(),
            "tags": self.tags,
            "scheduler_enabled": self.scheduler_enabled,
            "preemptible_node": False,
            "pass_config": self.pass_config,
            "privileged": self.privileged,
            "restart_policy": self.restart_policy,
            "priority": self.priority,
            "materialized": True,
            "being_dropped": False,
            "logs_removed": False,
            "total_price_credits": "0",
            "price_credits_per_hour": "0",
            "internal_hostname": self.internal_hostname,
        }
        for key in ("name", "description", "preset_name", "max_run_time_minutes"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        if self.schedule_timeout is not None:
            body["schedule_timeout"] = self.schedule_timeout
        if self.internal_hostname_named is not None:
            body["internal_hostname_named"] = self.internal_hostname_named
        if self.http_port is not None:
            body["http_url"] = f"{base_url}/jobs-http/{self.id}/"
            if self.host_segment_named is not None:
                body["http_url_named"] = f"{base_url}/jobs-http/{self.host_segment_named}/"
        return body

    # Persistence: a plain JSON document per job.
    def to_record(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("created_at", "started_at", "finished_at"):
            data[key] = iso(getattr(self, key))
        data["statuses"] = [
            {**s, "transition_time": iso(s["transition_time"])} for s in data["statuses"]
        ]
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Job:
        data = dict(data)
        for key in ("created_at", "started_at", "finished_at"):
            data[key] = datetime.fromisoformat(data[key]) if data[key] else None
        data["statuses"] = [
            StatusItem(**{**s, "transition_time": datetime.fromisoformat(s["transition_time"])})
            for s in data["statuses"]
        ]
        data["volumes"] = [Volume(**v) for v in data["volumes"]]
        return cls(**data)
