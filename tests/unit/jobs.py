"""Job descriptions as the SDK returns them, for tests that need no platform."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import apolo_sdk
from yarl import URL


def job(
    status: str, exit_code: int | None = None, started: bool = True, job_id: str = "job-1"
) -> apolo_sdk.JobDescription:
    now = datetime.now(UTC)
    history = apolo_sdk.JobStatusHistory(
        status=apolo_sdk.JobStatus(status),
        reason="Error" if status == "failed" else "",
        description="",
        started_at=now if started else None,
        exit_code=exit_code,
    )
    # apolo-sdk 26 added a required namespace; neuro-sdk 25.5 has no such field.
    fields = {f.name for f in dataclasses.fields(apolo_sdk.JobDescription)}
    namespace: dict[str, Any] = {"namespace": "ns"} if "namespace" in fields else {}
    return apolo_sdk.JobDescription(
        id=job_id, owner="me", cluster_name="c", org_name="o", project_name="p", **namespace,
        status=history.status, history=history,
        container=apolo_sdk.Container(
            image=apolo_sdk.RemoteImage(name="ubuntu"),
            resources=apolo_sdk.Resources(memory=1, cpu=1),
        ),
        scheduler_enabled=False, pass_config=False, uri=URL(f"job://c/o/p/{job_id}"),
        total_price_credits=Decimal(0), price_credits_per_hour=Decimal(0),
    )  # fmt: skip
