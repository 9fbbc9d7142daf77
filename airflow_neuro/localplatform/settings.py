"""What one local platform instance serves: its cluster, org, project, presets and paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .faults import FaultPlan

MiB = 2**20


@dataclass(frozen=True)
class Preset:
    name: str
    cpu: float
    memory: int  # bytes
    credits_per_hour: str = "0"

    def to_api(self) -> dict[str, object]:
        return {
            "name": self.name,
            "cpu": self.cpu,
            "memory": self.memory,
            "credits_per_hour": self.credits_per_hour,
            "scheduler_enabled": False,
            "preemptible_node": False,
        }


DEFAULT_PRESETS = (
    Preset("cpu-small", cpu=0.5, memory=1024 * MiB),
    Preset("cpu-medium", cpu=1.0, memory=2048 * MiB),
    Preset("cpu-large", cpu=2.0, memory=4096 * MiB),
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    token: str
    user: str = "local"
    cluster: str = "local"
    org: str = "local"
    project: str = "default"
    presets: tuple[Preset, ...] = DEFAULT_PRESETS
    # Seconds in one "minute" of max_run_time_minutes; tests shorten it to see life spans end.
    minute_seconds: float = 60.0
    # How long a cancelled job gets between SIGTERM and SIGKILL, as a container runtime gives.
    kill_grace_seconds: float = 5.0
    faults: FaultPlan = field(default_factory=FaultPlan)
    # Image -> runtime directory (with a bin/) that jobs with that image run with; see
    # runtimes.py for how an image is matched. Left out of the hash, which a mapping has
    # not, so that Settings stays hashable.
    runtimes: Mapping[str, Path] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    # Whom jobs run as when the platform runs as root (otherwise they run as its own user).
    job_user: str = "nobody"
    # Jobs outlive the platform process, as on the real platform, and a platform started
    # on the same data dir picks them up. In-process platforms (tests) end theirs instead.
    keep_jobs_on_stop: bool = False

    def __post_init__(self) -> None:
        # A copy the caller cannot change under running jobs, as the other fields are frozen.
        object.__setattr__(self, "runtimes", MappingProxyType(dict(self.runtimes)))

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def hosts_path(self) -> Path:
        return self.data_dir / "hosts"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "platform.sqlite3"

    def preset(self, name: str) -> Preset | None:
        return next((p for p in self.presets if p.name == name), None)
