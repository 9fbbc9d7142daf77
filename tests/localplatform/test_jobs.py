"""Jobs through the real SDK over real HTTP against the in-process local platform."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import apolo_sdk
import pytest

from airflow_neuro.localplatform import LocalPlatform
from airflow_neuro.localplatform.process import main_process

from .conftest import login
from .helpers import (
    emptied,
    job_processes,
    processes_in,
    read_log,
    start,
    wait_for_output,
    wait_for_status,
)


async def test_login_describes_one_local_cluster(client: apolo_sdk.Client) -> None:
    assert client.config.cluster_name == "local"
    assert client.config.org_name == "local"
    assert client.config.project_name == "default"
    assert client.config.username == "local"
    presets = client.config.presets
    assert {"cpu-small", "cpu-medium", "cpu-large"} <= set(presets)
    assert presets["cpu-small"].cpu == 0.5


async def test_start_with_preset_runs_command_and_succeeds(client: apolo_sdk.Client) -> None:
    job = await start(
        client,
        "sh -c 'echo \"hello $GREETING\"'",
        env={"GREETING": "world"},
        name="greeter",
        tags=["team:ml", "kind:test"],
        description="says hello",
    )
    assert job.status == apolo_sdk.JobStatus.PENDING
    assert job.id.startswith("job-")
    done = await wait_for_status(client, job.id)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    assert done.history.exit_code == 0
    assert done.preset_name == "cpu-small"
    assert done.name == "greeter"
    assert list(done.tags) == ["kind:test", "team:ml"]
    assert done.description == "says hello"
    assert done.container.image.name == "ubuntu"
    assert str(done.uri) == f"job://local/local/default/{job.id}"
    assert [s.status for s in done.history.transitions][-2:] == [
        apolo_sdk.JobStatus.RUNNING,
        apolo_sdk.JobStatus.SUCCEEDED,
    ]
    assert done.history.started_at is not None
    assert done.history.finished_at is not None
    assert b"".join(await read_log(client, job.id)) == b"hello world\n"


async def test_job_environment_is_minimal(
    client: apolo_sdk.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATFORM_SECRET", "must-not-leak")
    job = await start(client, "env", env={"MINE": "1"})
    await wait_for_status(client, job.id)
    env = dict(
        line.split("=", 1) for line in b"".join(await read_log(client, job.id)).decode().split()
    )
    assert set(env) == {"PATH", "HOME", "LANG", "MINE"}
    assert env["MINE"] == "1"


async def test_run_with_explicit_resources(client: apolo_sdk.Client) -> None:
    container = apolo_sdk.Container(
        image=client.parse.remote_image("python:3.11"),
        resources=apolo_sdk.Resources(cpu=0.25, memory=128 * 2**20),
        entrypoint="sh -c",
        command="'echo $0' resources",
    )
    job = await client.jobs.run(container, life_span=600)
    done = await wait_for_status(client, job.id)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    assert done.container.resources.cpu == 0.25
    assert done.container.resources.memory == 128 * 2**20
    assert done.preset_name is None
    assert b"".join(await read_log(client, job.id)) == b"resources\n"


async def test_failed_job_keeps_exit_code(client: apolo_sdk.Client) -> None:
    job = await start(client, "sh -c 'echo bad >&2; exit 3'")
    done = await wait_for_status(client, job.id)
    assert done.status == apolo_sdk.JobStatus.FAILED
    assert done.history.reason == "Error"
    assert done.history.exit_code == 3
    assert b"".join(await read_log(client, job.id)) == b"bad\n"


async def test_missing_executable_cannot_run(client: apolo_sdk.Client) -> None:
    job = await start(client, "no-such-program --flag")
    done = await wait_for_status(client, job.id)
    assert done.status == apolo_sdk.JobStatus.FAILED
    assert done.history.reason == "ContainerCannotRun"
    assert done.history.exit_code == 127
    assert "no-such-program" in done.history.description


async def test_log_bytes_are_exact_across_split_writes(client: apolo_sdk.Client) -> None:
    # U+0416 is D0 96: the two bytes are written 0.3 s apart, so they arrive apart.
    job = await start(client, "sh -c \"printf '\\320'; sleep 0.3; printf '\\226\\n'; echo end\"")
    chunks = await read_log(client, job.id)
    assert b"".join(chunks) == "Ж\nend\n".encode()
    assert len(chunks) >= 2
    numbers = await start(client, "sh -c 'for i in 1 2 3 4 5; do echo $i; done'")
    assert b"".join(await read_log(client, numbers.id)) == b"1\n2\n3\n4\n5\n"


async def test_log_follows_a_running_job(client: apolo_sdk.Client) -> None:
    job = await start(client, "sh -c 'echo first; sleep 1; echo second'")
    await wait_for_status(client, job.id, {apolo_sdk.JobStatus.RUNNING})
    got = []
    async with client.jobs.monitor(job.id) as stream:
        async for chunk in stream:
            got.append(chunk)
            if len(got) == 1:
                # The first line is here while the job still runs.
                assert (await client.jobs.status(job.id)).status == apolo_sdk.JobStatus.RUNNING
    assert b"".join(got) == b"first\nsecond\n"


async def test_log_timestamps_and_since(client: apolo_sdk.Client) -> None:
    job = await start(client, "sh -c 'echo early; sleep 1.2; echo late'")
    await wait_for_status(client, job.id)
    stamped = b"".join(await read_log(client, job.id, timestamps=True)).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["early", "late"]
    times = [
        datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")) for line in stamped
    ]
    assert timedelta(seconds=1) <= times[1] - times[0] < timedelta(seconds=3)
    since = times[0] + timedelta(seconds=0.6)
    assert b"".join(await read_log(client, job.id, since=since)) == b"late\n"


async def test_text_log_endpoint(platform: LocalPlatform, client: apolo_sdk.Client) -> None:
    job = await start(client, "sh -c 'echo one; echo two'")
    await wait_for_status(client, job.id)
    headers = {"Authorization": f"Bearer {platform.settings.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{platform.api_url}/jobs/{job.id}/log", headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert await resp.read() == b"one\ntwo\n"


async def test_list_filters(client: apolo_sdk.Client) -> None:
    before = datetime.now(UTC)
    a = await start(client, "true", name="alpha", tags=["run:1", "task:a"])
    b = await start(client, "false", tags=["run:1", "task:b"])
    c = await start(client, "sleep 30", tags=["run:2"])
    for job in (a, b):
        await wait_for_status(client, job.id)
    await wait_for_status(client, c.id, {apolo_sdk.JobStatus.RUNNING})

    async def ids(**kwargs: object) -> list[str]:
        async with client.jobs.list(**kwargs) as it:
            return [j.id async for j in it]

    assert await ids() == [a.id, b.id, c.id]
    assert await ids(reverse=True) == [c.id, b.id, a.id]
    assert await ids(reverse=True, limit=2) == [c.id, b.id]
    assert await ids(statuses={apolo_sdk.JobStatus.FAILED}) == [b.id]
    assert await ids(statuses={apolo_sdk.JobStatus.RUNNING, apolo_sdk.JobStatus.SUCCEEDED}) == [
        a.id,
        c.id,
    ]
    assert await ids(name="alpha") == [a.id]
    assert await ids(tags={"run:1"}) == [a.id, b.id]
    assert await ids(tags={"run:1", "task:b"}) == [b.id]
    assert await ids(tags={"run:1", "run:2"}) == []
    assert await ids(owners={"local"}) == [a.id, b.id, c.id]
    assert await ids(owners={"someone-else"}) == []
    assert await ids(since=datetime.now(UTC)) == []
    assert await ids(until=before) == []
    assert await ids(since=before) == [a.id, b.id, c.id]
    await client.jobs.kill(c.id)


async def test_list_json_form(platform: LocalPlatform, client: apolo_sdk.Client) -> None:
    job = await start(client, "true", tags=["only"])
    headers = {"Authorization": f"Bearer {platform.settings.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{platform.api_url}/jobs", params={"tag": "only"}, headers=headers) as resp,
    ):
        body = await resp.json()
    assert [j["id"] for j in body["jobs"]] == [job.id]


async def test_kill_cancels_and_ends_the_process(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    job = await start(client, "sh -c 'echo started; exec sleep 60'")
    await wait_for_output(client, job.id, b"started\n")
    ids = job_processes(platform.settings.jobs_dir, job.id)
    main = main_process(ids.init)
    assert main in processes_in(ids.pid_namespace)  # the job's shell, now sleep
    await client.jobs.kill(job.id)
    cancelled = await client.jobs.status(job.id)
    assert cancelled.status == apolo_sdk.JobStatus.CANCELLED
    assert cancelled.history.reason == "UserRequested"
    await read_log(client, job.id)  # the log closes once the process has ended
    with pytest.raises(ProcessLookupError):
        os.kill(main, 0)
    assert await emptied(ids.pid_namespace) == []
    await client.jobs.kill(job.id)  # killing a finished job changes nothing
    assert (await client.jobs.status(job.id)).history.reason == "UserRequested"


async def test_cancel_lets_the_job_end_gracefully(client: apolo_sdk.Client) -> None:
    # SIGTERM reaches the job's processes, not only a sandbox around them: its trap runs.
    job = await start(
        client, "sh -c 'trap \"echo stopping; exit 0\" TERM; echo ready; sleep 30 & wait'"
    )
    await wait_for_output(client, job.id, b"ready\n")
    await client.jobs.kill(job.id)
    assert b"".join(await read_log(client, job.id)) == b"ready\nstopping\n"
    assert (await client.jobs.status(job.id)).history.reason == "UserRequested"


async def test_life_span_end_cancels(client: apolo_sdk.Client) -> None:
    # The fixture makes one life-span minute last a second.
    job = await start(client, "sleep 60", life_span=60)
    assert job.life_span == 60
    done = await wait_for_status(client, job.id, timeout=10)
    assert done.status == apolo_sdk.JobStatus.CANCELLED
    assert done.history.reason == "LifeSpanEnded"
    assert done.history.run_time_seconds is not None
    assert 0.8 < done.history.run_time_seconds < 5


async def test_bump_life_span_extends_it(client: apolo_sdk.Client) -> None:
    job = await start(client, "sleep 2.5", life_span=60)
    await client.jobs.bump_life_span(job.id, 180)
    assert (await client.jobs.status(job.id)).life_span == 240
    done = await wait_for_status(client, job.id, timeout=10)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED


async def test_status_by_name_gives_newest(client: apolo_sdk.Client) -> None:
    first = await start(client, "true", name="twice")
    await wait_for_status(client, first.id)
    second = await start(client, "true", name="twice")
    assert (await client.jobs.status("twice")).id == second.id


async def test_unknown_job_is_an_error(client: apolo_sdk.Client) -> None:
    with pytest.raises(apolo_sdk.IllegalArgumentError, match="no such job job-nope"):
        await client.jobs.status("job-nope")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad_Name"}, "name: does not match pattern"),
        ({"name": "ab"}, "name: length should be between 3 and 40"),
        ({"tags": ["has space"]}, "tags: 'has space' is not a valid tag"),
        ({"tags": [f"t{i}" for i in range(17)]}, "tags: list length is greater than 16"),
        ({"preset_name": "gpu-huge"}, "Preset was not found"),
        # Refused, not ignored: the job would run without the config it asked for.
        (
            {"pass_config": True},
            "pass_config: passing the platform config is not available on the local platform",
        ),
    ],
)
async def test_request_validation(
    client: apolo_sdk.Client, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(apolo_sdk.IllegalArgumentError, match=message):
        await start(client, "true", **kwargs)


async def test_unknown_key_and_duplicate_live_name(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    headers = {"Authorization": f"Bearer {platform.settings.token}"}
    body = {"image": "ubuntu", "command": "true", "preset_name": "cpu-small", "colour": "red"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{platform.api_url}/jobs?from_preset", json=body, headers=headers) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json()) == {"error": "Invalid job request: colour: is not allowed key"}
    live = await start(client, "sleep 30", name="unique")
    with pytest.raises(apolo_sdk.IllegalArgumentError) as err:
        await start(client, "true", name="unique")
    assert str(err.value) == (
        "Failed to create job: job with name 'unique' and project 'default'"
        f" already exists: '{live.id}'"
    )
    await client.jobs.kill(live.id)
    await wait_for_status(client, live.id)
    again = await start(client, "true", name="unique")  # a finished job frees the name
    assert again.name == "unique"


async def test_a_cancelled_job_frees_its_name_while_its_process_ends(
    client: apolo_sdk.Client,
) -> None:
    # The job ignores SIGTERM, so its process lives on for the kill grace after the cancel.
    stubborn = await start(client, "sh -c 'trap \"\" TERM; echo up; sleep 30'", name="stubborn")
    await wait_for_status(client, stubborn.id, {apolo_sdk.JobStatus.RUNNING})
    await client.jobs.kill(stubborn.id)
    assert (await client.jobs.status(stubborn.id)).status == apolo_sdk.JobStatus.CANCELLED
    again = await start(client, "true", name="stubborn")
    assert again.id != stubborn.id


async def test_wrong_or_missing_token_is_401(platform: LocalPlatform, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            for path in ("/jobs", "/storage/local/default/x?op=GETFILESTATUS"):
                async with http.get(platform.api_url + path, headers=headers) as resp:
                    assert resp.status == 401
        async with http.get(platform.api_url + "/config") as resp:
            assert resp.status == 200
            assert (await resp.json())["authorized"] is False
    with pytest.raises(apolo_sdk.AuthError):
        await login(platform.api_url, "wrong", tmp_path / "bad-login")


async def test_http_port_is_proxied_with_auth(
    platform: LocalPlatform, client: apolo_sdk.Client, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    job = await start(
        client,
        f"{sys.executable} -m http.server {port} --bind 127.0.0.1",
        http=apolo_sdk.HTTPPort(port=port, requires_auth=True),
    )
    assert str(job.http_url).endswith(f"/jobs-http/{job.id}/")
    await wait_for_status(client, job.id, {apolo_sdk.JobStatus.RUNNING})
    async with aiohttp.ClientSession() as http:
        async with http.get(str(job.http_url)) as resp:
            assert resp.status == 401
        auth = {"Authorization": f"Bearer {platform.settings.token}"}
        for _ in range(100):  # the server inside the job needs a moment to bind
            async with http.get(str(job.http_url), headers=auth) as resp:
                if resp.status == 200:
                    assert "Directory listing" in await resp.text()
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the job's HTTP server never answered through the proxy")
    await client.jobs.kill(job.id)
