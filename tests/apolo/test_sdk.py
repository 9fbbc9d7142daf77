"""apolo-sdk 26.9 against the local platform: login, jobs.start, jobs.run, jobs.monitor."""

from __future__ import annotations

import apolo_sdk

from .helpers import read_log, wait_for_status

MiB = 2**20


async def test_login_with_token_selects_the_cluster_org_and_project(
    client: apolo_sdk.Client,
) -> None:
    assert apolo_sdk.__version__.startswith("26.9")
    assert client.username == "local"
    assert (client.cluster_name, client.config.org_name, client.config.project_name) == (
        "local",
        "local",
        "default",
    )
    assert list(client.config.presets) == ["cpu-small", "cpu-medium", "cpu-large"]


async def test_start_with_a_preset_succeeds_and_logs_exact_bytes(
    client: apolo_sdk.Client,
) -> None:
    # The two bytes of "Ж" are written apart: the log must not split or mangle them.
    started = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command='sh -c \'printf "\\320"; sleep 0.2; printf "\\226 ok\\n\\tlast"\'',
        tags=["sdk:26"],
    )
    assert started.preset_name == "cpu-small"
    assert started.uri.path == f"/local/default/{started.id}"

    done = await wait_for_status(client, started.id)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    assert done.history.exit_code == 0
    assert (done.container.resources.cpu, done.container.resources.memory) == (0.5, 1024 * MiB)
    assert await read_log(client, started.id) == "Ж ok\n\tlast".encode()

    async with client.jobs.list(tags={"sdk:26"}) as listed:
        assert [job.id async for job in listed] == [started.id]


async def test_run_with_explicit_resources_succeeds_and_logs_exact_bytes(
    client: apolo_sdk.Client,
) -> None:
    container = apolo_sdk.Container(
        image=client.parse.remote_image("ubuntu"),
        resources=apolo_sdk.Resources(cpu=0.25, memory=128 * MiB),
        command="sh -c 'for i in 1 2 3 4 5; do echo $i; done'",
    )
    started = await client.jobs.run(container, name="counter")
    assert started.name == "counter"
    assert started.preset_name is None

    done = await wait_for_status(client, started.id)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    assert done.history.exit_code == 0
    assert (done.container.resources.cpu, done.container.resources.memory) == (0.25, 128 * MiB)
    assert await read_log(client, started.id) == b"1\n2\n3\n4\n5\n"


async def test_run_reports_a_failing_exit_code(client: apolo_sdk.Client) -> None:
    container = apolo_sdk.Container(
        image=client.parse.remote_image("ubuntu"),
        resources=apolo_sdk.Resources(cpu=0.2, memory=64 * MiB),
        command="sh -c 'echo failing >&2; exit 4'",
    )
    done = await wait_for_status(client, (await client.jobs.run(container)).id)
    assert done.status == apolo_sdk.JobStatus.FAILED
    assert done.history.exit_code == 4
    assert await read_log(client, done.id) == b"failing\n"
