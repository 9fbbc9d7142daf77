"""The Airflow task instance a platform job belongs to, written on the job as tags."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PREFIX = "airflow-"


@dataclass(frozen=True)
class TaskIdentity:
    """dag, task, run, map index and try: enough to find, reattach to or cancel the job."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int

    @classmethod
    def of(cls, ti: Any) -> TaskIdentity:
        """The identity of a running task instance (``context["ti"]``)."""
        return cls(ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number)

    @property
    def instance_tags(self) -> list[str]:
        """The tags every try of this task instance shares: a retry finds its jobs by them."""
        return [
            f"{PREFIX}dag:{self.dag_id}",
            f"{PREFIX}task:{self.task_id}",
            f"{PREFIX}run:{self.run_id}",
            f"{PREFIX}map-index:{self.map_index}",
        ]

    @property
    def tags(self) -> list[str]:
        """All the tags a job started by this try carries."""
        return [*self.instance_tags, f"{PREFIX}try:{self.try_number}"]

    def started(self, job_tags: Iterable[str]) -> bool:
        """Whether a job with these tags was started by some try of this task instance."""
        return set(self.instance_tags) <= set(job_tags)


def tag_value(job_tags: Iterable[str], key: str) -> str | None:
    """The value of one identity tag (``"task"``, ``"run"``, ...) on a job, if it has it."""
    prefix = f"{PREFIX}{key}:"
    return next((tag[len(prefix) :] for tag in job_tags if tag.startswith(prefix)), None)


def spec_tag(fingerprint: str) -> str:
    """The tag a service's job carries to say which job spec started it."""
    return f"{PREFIX}spec:{fingerprint}"
