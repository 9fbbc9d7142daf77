"""Job processes under bubblewrap: signals reach the job, exit codes are the job's."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from airflow_neuro.localplatform import sandbox
from airflow_neuro.localplatform.process import launch
from airflow_neuro.localplatform.runner import BASE_PATH, LaunchPlan

bwrap = sandbox.bwrap_binary()
pytestmark = pytest.mark.skipif(bwrap is None, reason="bubblewrap missing")


def sandboxed(tmp_path: Path, *argv: str) -> LaunchPlan:
    assert bwrap is not None
    options = sandbox.bwrap_options(bwrap, [], None)
    return LaunchPlan(list(argv), {"PATH": BASE_PATH}, str(tmp_path), options)


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGKILL, 137)])
async def test_a_signal_before_the_job_has_its_own_group_still_ends_it(
    tmp_path: Path, signum: int, exit_code: int
) -> None:
    # bwrap reports the job's pid before it lets the job make its own process group; the
    # window is short, and a busy machine can pass it before the test looks: try again.
    for _ in range(20):
        process = await launch(sandboxed(tmp_path, "sleep", "30"))
        job_group, bwrap_group = process.groups
        assert bwrap_group == process.process.pid
        try:
            os.killpg(job_group, 0)
        except ProcessLookupError:
            break  # caught in the window
        process.signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 5)
    else:
        pytest.fail("the job made its own group before every look, 20 times")
    process.signal(signum)
    assert await asyncio.wait_for(process.wait(), 5) == exit_code


async def test_the_job_has_its_own_group_and_its_exit_code(tmp_path: Path) -> None:
    process = await launch(sandboxed(tmp_path, "sh", "-c", "sleep 1; exit 3"))
    job_group, bwrap_group = process.groups
    for _ in range(100):
        try:
            os.killpg(job_group, 0)
            break
        except ProcessLookupError:
            await asyncio.sleep(0.01)
    assert os.getpgid(job_group) == job_group != bwrap_group
    assert await asyncio.wait_for(process.wait(), 5) == 3
