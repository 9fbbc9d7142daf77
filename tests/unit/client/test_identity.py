"""TaskIdentity: the tags that tie a job to the task instance that started it."""

from __future__ import annotations

from types import SimpleNamespace

from airflow_neuro.client import TaskIdentity
from airflow_neuro.client.identity import tag_value


def test_tags_of_a_task_instance() -> None:
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=2)
    identity = TaskIdentity.of(ti)
    assert identity.tags == [
        "airflow-dag:d", "airflow-task:t", "airflow-run:r", "airflow-map-index:-1",
        "airflow-try:2",
    ]  # fmt: skip
    assert identity.instance_tags == identity.tags[:4]


def test_any_try_of_the_same_instance_started_the_job() -> None:
    first = TaskIdentity("d", "t", "r", 0, 1)
    assert TaskIdentity("d", "t", "r", 0, 3).started([*first.tags, "user-tag"])
    assert not TaskIdentity("d", "t", "r", 1, 1).started(first.tags)  # another map index
    assert not TaskIdentity("other", "t", "r", 0, 1).started(first.tags)


def test_tag_values() -> None:
    tags = TaskIdentity("d", "train", "r", 0, 1).tags
    assert tag_value(tags, "task") == "train"
    assert tag_value(tags, "map-index") == "0"
    assert tag_value(["x"], "task") is None
