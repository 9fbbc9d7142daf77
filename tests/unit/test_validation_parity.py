"""The plugin's name and tag checks and the local platform's must give the same verdicts.

They are two deliberate copies (the halves import nothing from each other), so this table
feeds both the same input: the plugin must refuse exactly what the platform would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.job_request import MAX_TAGS, JobRequest, check_name, check_tags
from airflow_neuro.localplatform import Settings
from airflow_neuro.localplatform.errors import JobRequestError
from airflow_neuro.localplatform.validation import parse_job_request

SETTINGS = Settings(data_dir=Path("/nonexistent"), token="unused")


def platform_accepts(**fields: object) -> bool:
    body = {"image": "ubuntu", "preset_name": SETTINGS.presets[0].name, **fields}
    try:
        parse_job_request(body, from_preset=True, settings=SETTINGS, owner="local")
    except JobRequestError:
        return False
    return True


def plugin_accepts_name(name: str) -> bool:
    try:
        check_name(name)
    except JobArgumentError:
        return False
    return True


def plugin_accepts_tags(tags: list[str]) -> bool:
    try:
        check_tags("job_tags", tags)
    except JobArgumentError:
        return False
    return True


NAMES = [
    ("abc", True),
    ("a" * 40, True),
    ("train-model-2", True),
    ("a1-b2-c3", True),
    ("ab", False),  # too short
    ("a" * 41, False),  # too long
    ("Train", False),  # upper case
    ("1abc", False),  # must start with a letter
    ("abc-", False),  # ends with a dash
    ("a--b", False),  # two dashes
    ("a_b_c", False),
    ("a.b.c", False),
    ("job-abc", False),  # looks like a job id
    ("abc\n", False),  # a trailing newline must not slip past an anchored pattern
    ("abc def", False),
    ("ábc", False),
]


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_names(name: str, valid: bool) -> None:
    assert (plugin_accepts_name(name), platform_accepts(name=name)) == (valid, valid)


TAGS = [
    (["a"], True),
    (["x" * 256], True),
    (["airflow-dag:d", "k=v", "ünïcode"], True),
    ([f"t{i}" for i in range(MAX_TAGS)], True),
    ([f"t{i}" for i in range(MAX_TAGS + 1)], False),  # over the limit
    ([""], False),
    (["x" * 257], False),
    (["a b"], False),
    (["tab\there"], False),
    (["line\n"], False),  # a trailing newline must not slip past an anchored pattern
    (["nbsp\u00a0here"], False),
    (["sep\x1chere"], False),  # str.isspace() and regex \s must agree on this one too
]


@pytest.mark.parametrize(("tags", "valid"), TAGS)
def test_tags(tags: list[str], valid: bool) -> None:
    assert (plugin_accepts_tags(tags), platform_accepts(tags=tags)) == (valid, valid)


def plugin_accepts(**kwargs: object) -> bool:
    try:
        fields: dict[str, Any] = {"job_command": "true", "job_image": "ubuntu", **kwargs}
        JobRequest(**fields).check()
    except JobArgumentError:
        return False
    return True


VOLUME = {"src_storage_uri": "storage://default/local/default/d", "dst_path": "/d"}
DAY = 24 * 3600
CENTURY = 100 * 365 * DAY
# (the operator's argument, the same value as the SDK sends it, the verdict of both)
LIMITS: list[tuple[dict[str, object], dict[str, object], bool]] = [
    ({"job_lifespan": 60}, {"max_run_time_minutes": 1}, True),
    ({"job_lifespan": 59}, {"max_run_time_minutes": 0}, False),
    ({"job_lifespan": CENTURY}, {"max_run_time_minutes": CENTURY // 60}, True),
    ({"job_lifespan": CENTURY + 60}, {"max_run_time_minutes": CENTURY // 60 + 1}, False),
    ({"job_schedule_timeout": 1}, {"schedule_timeout": 1}, True),
    ({"job_schedule_timeout": 0.5}, {"schedule_timeout": 0.5}, False),
    ({"job_schedule_timeout": 30 * DAY - 1}, {"schedule_timeout": 30 * DAY - 1}, True),
    ({"job_schedule_timeout": 30 * DAY}, {"schedule_timeout": 30 * DAY}, False),
    ({"job_description": "d" * 16_384}, {"description": "d" * 16_384}, True),
    ({"job_description": "d" * 16_385}, {"description": "d" * 16_385}, False),
    ({"job_command": "x" * 131_072}, {"command": "x" * 131_072}, True),
    ({"job_command": "x" * 131_073}, {"command": "x" * 131_073}, False),
    ({"job_command": "echo \0"}, {"command": "echo \0"}, False),
    ({"job_entrypoint": "sh\0"}, {"entrypoint": "sh\0"}, False),
    ({"job_environ": {"A": "1"}}, {"env": {"A": "1"}}, True),
    ({"job_environ": {"A=B": "1"}}, {"env": {"A=B": "1"}}, False),
    ({"job_environ": {"": "1"}}, {"env": {"": "1"}}, False),
    ({"job_environ": {"A\0": "1"}}, {"env": {"A\0": "1"}}, False),
    ({"job_environ": {"N" * 1024: "1"}}, {"env": {"N" * 1024: "1"}}, True),
    ({"job_environ": {"N" * 1025: "1"}}, {"env": {"N" * 1025: "1"}}, False),
    ({"job_environ": {"A": "x\0"}}, {"env": {"A": "x\0"}}, False),
    (
        {"job_environ": {f"V{i}": "" for i in range(1024)}},
        {"env": {f"V{i}": "" for i in range(1024)}},
        True,
    ),
    (
        {"job_environ": {f"V{i}": "" for i in range(1025)}},
        {"env": {f"V{i}": "" for i in range(1025)}},
        False,
    ),
    (
        {"job_volumes": [f"storage:d{i}:/d{i}" for i in range(128)]},
        {"volumes": [VOLUME] * 128},
        True,
    ),
    (
        {"job_volumes": [f"storage:d{i}:/d{i}" for i in range(129)]},
        {"volumes": [VOLUME] * 129},
        False,
    ),
]


@pytest.mark.parametrize(("plugin", "platform", "valid"), LIMITS)
def test_limits(plugin: dict[str, object], platform: dict[str, object], valid: bool) -> None:
    assert (plugin_accepts(**plugin), platform_accepts(**platform)) == (valid, valid)
