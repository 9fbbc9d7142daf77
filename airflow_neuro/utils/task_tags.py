"""Tags that tie a platform job to the Airflow task instance that started it."""

from __future__ import annotations

from typing import Any

PREFIX = "airflow-"


def task_instance_tags(ti: Any) -> list[str]:
    """dag, task, run, map index and try: enough to find, reattach to or cancel the job."""
    return [
        f"{PREFIX}dag:{ti.dag_id}",
        f"{PREFIX}task:{ti.task_id}",
        f"{PREFIX}run:{ti.run_id}",
        f"{PREFIX}map-index:{ti.map_index}",
        f"{PREFIX}try:{ti.try_number}",
    ]
