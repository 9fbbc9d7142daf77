"""Operator and sensor construction, output shapes and log decoding."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import apolo_sdk
import pytest
from yarl import URL

from airflow_neuro.exceptions import NeuroJobError
from airflow_neuro.get_provider_info import get_provider_info
from airflow_neuro.job_request import JobArgumentError
from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.sensors.neuro import NeuroJobStatusSensor, parse_statuses
from airflow_neuro.utils.job_info import check_outcome


def test_template_fields_are_the_documented_ones() -> None:
    assert set(NeuroRunOperator.template_fields) == {
        "job_command", "job_image", "job_volumes", "job_name", "job_resources_preset",
        "job_tags", "job_environ", "job_entrypoint", "job_description", "job_http_port",
        "neuro_conn_id",
    }  # fmt: skip
    assert set(NeuroJobStatusSensor.template_fields) >= {"job_id"}


def test_preset_and_resources_together_fail_at_parse_time() -> None:
    with pytest.raises(JobArgumentError, match="job_resources_preset: give a preset or"):
        NeuroRunOperator(
            task_id="t",
            job_command="true",
            job_image="ubuntu",
            job_resources_preset="cpu-small",
            job_resources=apolo_sdk.Resources(memory=2**30, cpu=1),
        )


def test_statuses_as_enums_or_names() -> None:
    assert parse_statuses(["Succeeded", apolo_sdk.JobStatus.FAILED]) == {
        apolo_sdk.JobStatus.SUCCEEDED,
        apolo_sdk.JobStatus.FAILED,
    }
    assert parse_statuses("running") == {apolo_sdk.JobStatus.RUNNING}
    with pytest.raises(JobArgumentError, match="job_statuses: unknown status 'done'"):
        parse_statuses(["done"])
    with pytest.raises(JobArgumentError, match="job_statuses: give at least one"):
        parse_statuses([])


def job(status: str, exit_code: int | None, started: bool) -> apolo_sdk.JobDescription:
    now = datetime.now(timezone.utc)
    history = apolo_sdk.JobStatusHistory(
        status=apolo_sdk.JobStatus(status),
        reason="Error" if status == "failed" else "",
        description="",
        started_at=now if started else None,
        exit_code=exit_code,
    )
    return apolo_sdk.JobDescription(
        id="job-1", owner="me", cluster_name="c", org_name="o", project_name="p",
        status=history.status, history=history,
        container=apolo_sdk.Container(
            image=apolo_sdk.RemoteImage(name="ubuntu"),
            resources=apolo_sdk.Resources(memory=1, cpu=1),
        ),
        scheduler_enabled=False, pass_config=False, uri=URL("job://c/o/p/job-1"),
        total_price_credits=Decimal(0), price_credits_per_hour=Decimal(0),
    )  # fmt: skip


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
            check_outcome(described, raise_on_errno)
    else:
        check_outcome(described, raise_on_errno)


def test_provider_info_registers_the_connection_type() -> None:
    info = get_provider_info()
    [conn] = info["connection-types"]
    assert conn["connection-type"] == "neuro"
    assert conn["hook-class-name"] == "airflow_neuro.hooks.neuro.NeuroHook"
    assert conn["ui-field-behaviour"]["relabeling"] == {"password": "Token"}
    assert len(info["extra-links"]) == 2
