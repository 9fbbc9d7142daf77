"""Job processes in their sandbox: signals reach the job, exit codes are the job's, and a
job is found again from its files alone."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from airflow_neuro.localplatform import sandbox
from airflow_neuro.localplatform.process import JobProcess, launch, main_process, start_time
from airflow_neuro.localplatform.runner import BASE_PATH, LaunchPlan

from .helpers import processes_in

bwrap = sandbox.bwrap_binary()
pytestmark = pytest.mark.skipif(bwrap is None, reason="bubblewrap missing")


def sandboxed(tmp_path: Path, *argv: str) -> LaunchPlan:
    assert bwrap is not None
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    spec = sandbox.SandboxSpec(
        mounts=(), home=str(home), chdir=str(home), hosts=str(hosts),
        hidden=(str(tmp_path / "hidden"),), reachable=(), user=None,
    )  # fmt: skip
    return LaunchPlan(
        list(argv), {"PATH": BASE_PATH}, str(home), sandbox.bwrap_options(bwrap, spec)
    )


async def started(tmp_path: Path, *argv: str) -> tuple[JobProcess, Path]:
    log = tmp_path / "output.log"
    return await launch(sandboxed(tmp_path, *argv), tmp_path, log), log


async def output_line(log: Path) -> str:
    for _ in range(500):
        if log.read_text().endswith("\n"):
            return log.read_text()
        await asyncio.sleep(0.01)
    raise AssertionError(f"no output in {log}")


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGKILL, 137)])
async def test_signals_end_the_job_with_a_container_exit_code(
    tmp_path: Path, signum: int, exit_code: int
) -> None:
    process, log = await started(tmp_path, "sh", "-c", "echo up; exec sleep 30")
    await output_line(log)
    process.signal(signum)
    assert await asyncio.wait_for(process.wait(), 5) == exit_code


async def test_the_job_has_its_own_group_and_exit_code_survives_in_its_status_file(
    tmp_path: Path,
) -> None:
    process, log = await started(tmp_path, "sh", "-c", "echo up; sleep 1; exit 3")
    await output_line(log)
    ids = process.ids
    # bwrap's init leads the job's session and group, apart from the platform's.
    main = main_process(ids.init)
    assert main is not None
    assert os.getpgid(main) == ids.init == os.getsid(main) != os.getsid(0)
    assert await asyncio.wait_for(process.wait(), 5) == 3
    # A platform that was not there when it ended reads the same from the job's directory.
    found = JobProcess.find(tmp_path)
    assert found is not None
    assert found.ids == ids
    assert await asyncio.wait_for(found.wait(), 5) == 3


async def test_a_process_that_leaves_the_session_still_ends_with_the_job(tmp_path: Path) -> None:
    # setsid takes a process out of the job's group, not out of its PID namespace.
    process, log = await started(
        tmp_path, "sh", "-c", "setsid sh -c 'sleep 60' & sleep 0.3; echo $!; exec sleep 60"
    )
    await output_line(log)
    inside = set(processes_in(process.ids.pid_namespace))
    assert len(inside) >= 2  # the job's main process, and the one that left its session
    process.signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), 5)
    process.signal(signal.SIGKILL)  # as the platform does once the main process has ended
    for _ in range(200):
        if all(start_time(pid) is None for pid in inside):
            break
        await asyncio.sleep(0.01)
    assert all(start_time(pid) is None for pid in inside)
    assert not process.leftovers_alive()
