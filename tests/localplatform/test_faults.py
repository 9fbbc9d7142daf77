"""Fault injection on the local platform."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from airflow_neuro.localplatform import LocalPlatform
from airflow_neuro.localplatform.faults import FaultPlan

from .conftest import platform_settings


async def test_every_endpoint_can_be_faulted(tmp_path: Path) -> None:
    settings = platform_settings(tmp_path / "p")
    settings = replace(settings, faults=FaultPlan.parse(1.0, "503"))
    async with LocalPlatform(settings) as platform, aiohttp.ClientSession() as http:
        for path in ("/config", "/jobs", "/storage/local/default?op=LISTSTATUS"):
            async with http.get(platform.api_url + path) as resp:
                assert resp.status == 503
                assert "fault injected" in await resp.text()


async def test_resets_and_delays(tmp_path: Path) -> None:
    settings = platform_settings(tmp_path / "p")
    reset = replace(settings, faults=FaultPlan.parse(1.0, "reset"))
    async with LocalPlatform(reset) as platform, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(platform.api_url + "/config"):
                pass
    delay = replace(settings, faults=FaultPlan.parse(1.0, "delay", delay_seconds=0.5))
    async with LocalPlatform(delay) as platform, aiohttp.ClientSession() as http:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with http.get(platform.api_url + "/config") as resp:
            assert resp.status == 200
        assert loop.time() - started >= 0.5


def test_bad_fault_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown 'teapot'"):
        FaultPlan.parse(0.3, "502,teapot")
    with pytest.raises(ValueError, match="not between 0 and 1"):
        FaultPlan.parse(1.5, "502")
    done = subprocess.run(
        [sys.executable, "-m", "airflow_neuro.localplatform", "--fault-rate", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "--fault-rate: 2.0 is not between 0 and 1" in done.stderr
