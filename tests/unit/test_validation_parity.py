"""The plugin's name and tag checks and the local platform's must give the same verdicts.

They are two deliberate copies (the halves import nothing from each other), so this table
feeds both the same input: the plugin must refuse exactly what the platform would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.job_request import MAX_TAGS, check_name, check_tags
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
