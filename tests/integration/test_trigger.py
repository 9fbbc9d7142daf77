"""NeuroJobTrigger in one event loop, as the triggerer runs many of them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_neuro.client import NeuroClient
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.triggers.neuro import NeuroJobTrigger
from airflow_neuro.triggers.pool import CLIENTS

from ..conftest import PlatformProcess


def start_jobs(commands: list[str]) -> list[str]:
    with NeuroHook() as hook:
        image = hook.client.parse.remote_image("ubuntu")
        return [
            hook.run(hook.client.jobs.start(image=image, preset_name="cpu-small", command=c)).id
            for c in commands
        ]


def test_triggers_share_one_login_per_connection(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_ids = start_jobs([f"sleep {0.2 * i}" for i in range(1, 9)] + ["sh -c 'exit 2'"])
    logins: list[str] = []
    real_connect = NeuroClient.connect

    async def counted_login(*args: Any, **kwargs: Any) -> NeuroClient:
        logins.append("login")
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(NeuroClient, "connect", counted_login)

    async def fire(job_id: str) -> dict[str, Any]:
        trigger = NeuroJobTrigger(job_id=job_id, poll_interval=0.5)
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    async def all_of_them() -> list[dict[str, Any]]:
        events = await asyncio.gather(*(fire(j) for j in job_ids))
        assert CLIENTS.count() == 0  # the last trigger out closed the shared client
        return events

    events = asyncio.run(all_of_them())
    assert logins == ["login"]  # nine triggers, one login
    assert [e["result"] for e in events] == ["done"] * 9
    assert [e["job"]["status"] for e in events] == ["succeeded"] * 8 + ["failed"]
    assert events[-1]["job"]["exit_code"] == 2


def test_trigger_on_kill_cancels_the_job(platform_process: PlatformProcess) -> None:
    [job_id] = start_jobs(["sleep 60"])
    asyncio.run(NeuroJobTrigger(job_id=job_id).on_kill())
    with NeuroHook() as hook:
        assert hook.run(hook.client.jobs.status(job_id)).status.value == "cancelled"
