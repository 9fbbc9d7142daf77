"""The official `apolo` CLI 26.9, in subprocesses, against the local platform."""

from __future__ import annotations

import shlex

import apolo_sdk

from airflow_neuro.localplatform import LocalPlatform

from .helpers import Cli, status_fields, table_rows, wait_for_status


async def test_login_keeps_config_and_logs_in_the_given_dirs(
    cli: Cli, platform: LocalPlatform
) -> None:
    assert (cli.config / "db").is_file()
    assert cli.config.stat().st_mode & 0o777 == 0o700
    # The CLI's own debug log went to the fake home, not the user's.
    assert list((cli.home / ".apolo" / "logs").glob("apolo-run-*.txt"))
    shown = status_fields(await cli("config", "show"))
    assert shown["User Name"] == "local"
    assert shown["Current Project"] == "default"
    assert shown["API URL"] == platform.api_url


async def test_run_detached_then_ps_status_and_logs(cli: Cli, client: apolo_sdk.Client) -> None:
    command = ["sh", "-c", "echo from-cli; printf 'caf\\303\\251\\tend\\n'"]
    run = ["-q", "run", "--detach", "--preset", "cpu-small", "--tag", "cli", "ubuntu", "--"]
    job_id = (await cli(*run, *command)).strip()
    assert job_id.startswith("job-")
    done = await wait_for_status(client, job_id)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    assert done.preset_name == "cpu-small"
    assert done.tags == ["cli"]

    # Without --all, ps lists only pending, suspended and running jobs.
    assert await cli("-q", "ps") == ""
    assert await cli("-q", "ps", "--all") == f"{job_id}\n"
    rows = table_rows(await cli("ps", "--all", "--format", "id status tags", "--full-uri"))
    assert rows[0] == ["ID", "STATUS", "TAGS"]
    assert [job_id, "succeeded", "cli"] in rows

    fields = status_fields(await cli("status", job_id))
    assert fields["Job"] == job_id
    assert fields["Status"] == "succeeded"
    assert fields["Preset"] == "cpu-small"
    assert fields["Exit code"] == "0"
    assert fields["Command"] == shlex.join(command)

    _, out, err = await cli.run("logs", job_id)
    assert out == "from-cli\ncafé\tend\n".encode()
    assert err == b""


async def test_kill_cancels_a_running_job(cli: Cli, client: apolo_sdk.Client) -> None:
    quick_id = (
        await cli("-q", "run", "--detach", "--preset", "cpu-small", "ubuntu", "--", "true")
    ).strip()
    long_id = (
        await cli(
            "-q", "run", "--detach", "--preset", "cpu-small", "--name", "sleeper",
            "ubuntu", "--", "sleep", "60",
        )
    ).strip()  # fmt: skip
    # --detach still waits for the job to leave pending.
    assert status_fields(await cli("status", "sleeper"))["Status"] == "running"
    assert long_id in await cli("-q", "ps")

    assert await cli("kill", long_id) == f"{long_id}\n"
    killed = await client.jobs.status(long_id)
    assert killed.status == apolo_sdk.JobStatus.CANCELLED
    assert killed.history.reason == "UserRequested"
    assert status_fields(await cli("status", long_id))["Status"] == "cancelled (UserRequested)"
    assert await cli("-q", "ps") == ""
    assert await cli("-q", "ps", "--status", "cancelled") == f"{long_id}\n"
    # Killing a job that has already finished changes nothing.
    await wait_for_status(client, quick_id)
    assert await cli("kill", quick_id) == f"{quick_id}\n"
    assert (await client.jobs.status(quick_id)).status == apolo_sdk.JobStatus.SUCCEEDED


async def test_unknown_job_is_an_error(cli: Cli) -> None:
    code, _, err = await cli.run("status", "job-00000000-0000-0000-0000-000000000000", check=False)
    assert code != 0
    assert b"no such job job-00000000-0000-0000-0000-000000000000" in err
