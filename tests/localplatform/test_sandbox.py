"""What a hostile job tries, and what it gets: the commands are those an attacker would run."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shlex
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import apolo_sdk
import pytest

from airflow_neuro.localplatform import LocalPlatform, sandbox
from airflow_neuro.localplatform.process import main_process, start_time

from .conftest import login, platform_settings
from .helpers import (
    job_processes,
    processes_in,
    read_log,
    start,
    wait_for_output,
    wait_for_status,
)

pytestmark = pytest.mark.skipif(sandbox.bwrap_binary() is None, reason="bubblewrap missing")


async def output_of(client: apolo_sdk.Client, script: str, **kwargs: object) -> str:
    job = await start(client, f"sh -c {shlex.quote(script)}", **kwargs)
    await wait_for_status(client, job.id)
    return b"".join(await read_log(client, job.id)).decode()


async def test_the_platform_files_are_out_of_sight(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    data_dir = platform.settings.data_dir
    (data_dir / "token").write_text(platform.settings.token)
    first = await start(client, "sh -c 'echo the-first-jobs-output'", env={"SECRET": "s3cr3t"})
    await wait_for_status(client, first.id)
    probe = f"""
        ls -a {data_dir}
        cat {data_dir}/token {data_dir}/platform.sqlite3 {data_dir}/hosts
        cat {data_dir}/jobs/{first.id}/output.log {data_dir}/jobs/{first.id}/process.json
        ls {data_dir}/storage
        grep -r s3cr3t / --include=*.log -s -l | head -3
        echo done
    """
    output = await output_of(client, probe)
    assert output.endswith("done\n"), output
    assert platform.settings.token not in output
    assert "the-first-jobs-output" not in output
    assert "s3cr3t" not in output
    assert "SQLite" not in output
    # The data dir is an empty directory in the job's view; its own home is the one entry.
    assert output.split("\n")[:3] == [".", "..", "jobs"]


async def test_other_processes_cannot_be_seen_nor_signalled(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    sleeper = await start(client, "sh -c 'echo up; exec sleep 60'")
    await wait_for_output(client, sleeper.id, b"up\n")
    other = job_processes(platform.settings.jobs_dir, sleeper.id)
    me = os.getpid()  # the platform's own process: this test runs it
    probe = f"""
        ls /proc | grep -c '^[0-9]'
        cat /proc/{me}/environ && echo read-the-platform-environ
        kill -TERM {me} && echo signalled-the-platform
        kill -KILL {main_process(other.init)} {other.init} && echo signalled-another-job
        kill -KILL -1; echo done
    """
    output = await output_of(client, probe)
    assert "read-the-platform-environ" not in output
    assert "signalled-the-platform" not in output
    assert "signalled-another-job" not in output
    # Its init, the shell, and ls and grep at most: no process of anyone else's.
    assert int(output.split("\n")[0]) <= 4, output
    assert (await client.jobs.status(sleeper.id)).status == apolo_sdk.JobStatus.RUNNING
    await client.jobs.kill(sleeper.id)


async def test_the_environment_is_the_jobs_own(
    client: apolo_sdk.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the Airflow process that started the platform holds: its connections' secrets.
    monkeypatch.setenv("AIRFLOW_CONN_NEURO_DEFAULT", "neuro://:the-token@")
    output = await output_of(client, "env", env={"GIVEN": "yes"})
    names = {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}
    assert "the-token" not in output
    assert names <= {"GIVEN", "PATH", "HOME", "LANG", "SHLVL", "PWD", "_"}, names
    assert "GIVEN=yes" in output.splitlines()


async def test_the_host_is_read_only_and_tmp_is_private(
    client: apolo_sdk.Client, tmp_path: Path
) -> None:
    host_file = tmp_path / "on-the-host"
    host_file.write_text("host data\n")
    host_file.chmod(0o666)
    probe = f"""
        touch /usr/planted /etc/planted
        cat {host_file} || echo host-tmp-not-there
        touch /tmp/mine /dev/shm/mine /var/tmp/mine && echo private-tmp-writable
        touch $HOME/mine && echo home-writable
    """
    output = await output_of(client, probe)
    lines = output.splitlines()
    # The mount refuses, whatever the files' modes and whoever the job runs as.
    assert "touch: cannot touch '/usr/planted': Read-only file system" in lines
    assert "touch: cannot touch '/etc/planted': Read-only file system" in lines
    assert "host-tmp-not-there" in lines
    assert "host data" not in lines
    assert "private-tmp-writable" in lines
    assert "home-writable" in lines
    assert not Path("/usr/planted").exists()
    assert not Path("/tmp/mine").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="jobs run as the platform's own user")
async def test_a_root_platform_runs_jobs_unprivileged(client: apolo_sdk.Client) -> None:
    output = await output_of(client, "id -u; id -g; grep CapEff /proc/self/status; cat /etc/shadow")
    lines = output.splitlines()
    assert lines[:2] == ["65534", "65534"]
    assert lines[2].split() == ["CapEff:", "0000000000000000"]
    assert "root:" not in output


@pytest.mark.parametrize("ending", ["exits", "is cancelled"])
async def test_a_process_that_leaves_the_session_ends_with_its_job(
    platform: LocalPlatform, client: apolo_sdk.Client, ending: str
) -> None:
    # setsid, and a double fork, take a process out of the job's group and parentage.
    script = "(setsid sh -c 'sleep 300' &); echo started; "
    script += "exec sleep 60" if ending == "is cancelled" else "sleep 0.5"
    job = await start(client, f"sh -c {shlex.quote(script)}")
    await wait_for_status(client, job.id, {apolo_sdk.JobStatus.RUNNING})
    ids = job_processes(platform.settings.jobs_dir, job.id)
    for _ in range(100):
        if len(processes_in(ids.pid_namespace)) >= 3:
            break
        await asyncio.sleep(0.05)
    inside = processes_in(ids.pid_namespace)
    if ending == "is cancelled":
        await client.jobs.kill(job.id)
    await wait_for_status(client, job.id)
    await read_log(client, job.id)  # the log closes once its processes are gone
    for _ in range(100):
        if not any(start_time(pid) for pid in inside):
            break
        await asyncio.sleep(0.05)
    assert not any(start_time(pid) for pid in inside), inside


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


async def test_data_dir_db_and_logs_are_private_whatever_the_umask(
    loose_umask: None, tmp_path: Path
) -> None:
    data_dir = tmp_path / "platform"
    data_dir.mkdir(mode=0o777)
    async with LocalPlatform(platform_settings(data_dir)) as platform:
        jobs = platform.settings.jobs_dir

        client = await login(platform.api_url, platform.settings.token, tmp_path / "sdk")
        try:
            job = await start(client, "echo hello")
            await wait_for_status(client, job.id)
        finally:
            await client.close()
        modes = {
            path.name: stat.S_IMODE(path.stat().st_mode)
            for path in [data_dir, platform.settings.db_path, *(jobs / job.id).iterdir()]
            if path.name != "home"
        }
    assert modes.pop("platform") == 0o700
    assert modes.pop("platform.sqlite3") == 0o600
    assert set(modes) >= {"output.log", "output.idx", "status.json", "process.json"}
    assert set(modes.values()) == {0o600}, modes


async def test_a_job_stopped_by_signal_reports_it(client: apolo_sdk.Client) -> None:
    job = await start(client, "sh -c 'kill -TERM $$'")
    done = await wait_for_status(client, job.id)
    assert done.history.exit_code == 128 + signal.SIGTERM


async def test_a_runtime_under_the_hosts_tmp_is_reachable(tmp_path: Path) -> None:
    # /tmp is private in a job: a runtime there (a clone of the repository under /tmp, say)
    # is bound back, and the directories on the way must be walkable by the job's user.
    runtime = tmp_path / "deep" / "runtime"
    (runtime / "bin").mkdir(parents=True)
    tool = runtime / "bin" / "hello"
    tool.write_text("#!/bin/sh\necho hello from the runtime\n")
    tool.chmod(0o755)
    settings = dataclasses.replace(
        platform_settings(tmp_path / "platform"), runtimes={"tools:1": runtime}
    )
    async with LocalPlatform(settings) as platform:
        client = await login(platform.api_url, settings.token, tmp_path / "sdk")
        try:
            job = await client.jobs.start(
                image=client.parse.remote_image("tools:1"), preset_name="cpu-small", command="hello"
            )
            await wait_for_status(client, job.id)
            assert b"".join(await read_log(client, job.id)) == b"hello from the runtime\n"
        finally:
            await client.close()
