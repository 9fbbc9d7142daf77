"""What the cache key covers, and what it leaves out."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from airflow_neuro.client.cache import cache_job_name, cache_key, cache_tag
from airflow_neuro.job_request import JobRequest, check_name

BASE = JobRequest(
    job_command="python train.py",
    job_image="image:trainer:v1",
    job_volumes=["storage:data:/data:ro"],
    job_environ={"EPOCHS": "3", "RUN_ID": "r1"},
)


def key(request: JobRequest = BASE, **kwargs: Any) -> str:
    return cache_key(request, **kwargs)


@pytest.mark.parametrize(
    "change",
    [
        {"job_command": "python train.py --fast"},
        {"job_image": "image:trainer:v2"},
        {"job_entrypoint": "/bin/sh"},
        {"job_environ": {"EPOCHS": "4", "RUN_ID": "r1"}},
        {"job_volumes": ["storage:data2:/data:ro"]},
    ],
)
def test_what_decides_the_result_changes_the_key(change: dict[str, Any]) -> None:
    assert key(dataclasses.replace(BASE, **change)) != key()


@pytest.mark.parametrize(
    "change",
    [
        {"job_name": "trainer"},
        {"job_tags": ["team:a"]},
        {"job_lifespan": 600},
        {"job_resources_preset": "cpu-large"},
        {"job_description": "nightly"},
    ],
)
def test_where_and_how_it_runs_does_not(change: dict[str, Any]) -> None:
    assert key(dataclasses.replace(BASE, **change)) == key()


def test_extra_inputs_and_ignored_variables() -> None:
    assert key(extra="v2") != key() != key(extra={"dataset": "b"})
    assert key(inputs=[("storage://c/o/p/in/a", 10, 1700000000)]) != key()
    assert key(inputs=[("storage://c/o/p/in/a", 10, 1700000000)]) != key(
        inputs=[("storage://c/o/p/in/a", 10, 1700000001)]
    )
    other_run = dataclasses.replace(BASE, job_environ={"EPOCHS": "3", "RUN_ID": "r2"})
    assert key(other_run) != key()
    assert key(other_run, ignore_env=["RUN_ID"]) == key(ignore_env=["RUN_ID"])


def test_the_key_is_a_valid_tag_and_job_name() -> None:
    k = key()
    assert len(k) == 16
    assert cache_tag(k) == f"airflow-cache:{k}"
    check_name(cache_job_name(k))  # raises if the platform would refuse it
