"""JobSummary: the one form job facts take in XCom, trigger events and outcome checks."""

from __future__ import annotations

import pytest

from airflow_neuro.client import JobSummary
from airflow_neuro.exceptions import NeuroJobError

from ..jobs import job


@pytest.mark.parametrize(
    ("status", "exit_code", "started", "raise_on_errno", "fails"),
    [
        ("succeeded", 0, True, True, False),
        ("failed", 3, True, True, True),
        ("failed", 3, True, False, False),
        ("failed", 127, False, False, True),  # never ran: always a failure
        ("cancelled", None, True, False, True),
    ],
)
def test_outcomes(
    status: str, exit_code: int | None, started: bool, raise_on_errno: bool, fails: bool
) -> None:
    described = job(status, exit_code, started)
    if fails:
        with pytest.raises(NeuroJobError, match=f"job job-1 {status}"):
            JobSummary.of(described).check_outcome(raise_on_errno)
    else:
        JobSummary.of(described).check_outcome(raise_on_errno)


def test_the_failure_carries_the_job() -> None:
    summary = JobSummary.of(job("failed", 3))
    with pytest.raises(NeuroJobError) as failed:
        summary.check_outcome(raise_on_errno=True)
    assert failed.value.job == summary
    assert str(failed.value) == "job job-1 failed: reason=Error, description=-, exit code=3"


def test_json_round_trip_and_the_xcom_shape() -> None:
    summary = JobSummary.of(job("succeeded", 0))
    assert JobSummary.from_json(summary.to_json()) == summary
    assert summary.xcom() == {"id": "job-1", "exit_code": 0, "status": "succeeded",
                              "http_url": None}  # fmt: skip
    assert summary.is_finished
    assert not JobSummary.of(job("running")).is_finished


@pytest.mark.parametrize(
    "data", [None, [], {"status": "running"}, {"id": "j", "status": "done"}, {"id": 3}]
)
def test_from_json_refuses_what_is_not_a_summary(data: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the type is the contract here
        JobSummary.from_json(data)
