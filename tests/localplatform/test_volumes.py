"""Storage volumes mounted into jobs, read-only and read-write."""

from __future__ import annotations

from pathlib import Path

import apolo_sdk
import pytest

from airflow_neuro.localplatform import LocalPlatform, sandbox

from .helpers import read_log, start, wait_for_status

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_binary() is None, reason="bubblewrap missing")


def project_dir(platform: LocalPlatform) -> Path:
    return platform.settings.storage_dir / "local" / "default"


@needs_bwrap
async def test_read_only_volume(platform: LocalPlatform, client: apolo_sdk.Client) -> None:
    data = project_dir(platform) / "inputs"
    data.mkdir(parents=True)
    (data / "a.txt").write_text("from storage\n")
    job = await start(
        client,
        "sh -c 'cat /mnt/in/a.txt; touch /mnt/in/b.txt || echo read-only'",
        volumes=[client.parse.volume("storage:inputs:/mnt/in:ro")],
    )
    done = await wait_for_status(client, job.id)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED
    log = b"".join(await read_log(client, job.id)).decode()
    assert log.startswith("from storage\n")
    assert log.endswith("read-only\n")
    assert not (data / "b.txt").exists()
    # The mount point was made inside the job's view only, never on the host.
    assert not Path("/mnt/in").exists()
    assert done.container.volumes[0].read_only


@needs_bwrap
async def test_read_write_volume_and_working_dir(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    job = await start(
        client,
        "sh -c 'pwd; echo result > /var/airflow-neuro-out/model.txt'",
        volumes=[client.parse.volume("storage:outputs:/var/airflow-neuro-out:rw")],
        working_dir="/workspace/here",
    )
    done = await wait_for_status(client, job.id)
    assert done.status == apolo_sdk.JobStatus.SUCCEEDED, done.history
    assert b"".join(await read_log(client, job.id)) == b"/workspace/here\n"
    assert (project_dir(platform) / "outputs" / "model.txt").read_text() == "result\n"
    assert not Path("/var/airflow-neuro-out").exists()
    assert not Path("/workspace").exists()


async def test_volume_without_bubblewrap_fails_with_a_hint(
    client: apolo_sdk.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulates a machine without bubblewrap: the job must say what to install.
    monkeypatch.setattr("airflow_neuro.localplatform.runner.bwrap_binary", lambda: None)
    job = await start(client, "true", volumes=[client.parse.volume("storage:x:/mnt/x")])
    done = await wait_for_status(client, job.id)
    assert done.status == apolo_sdk.JobStatus.FAILED
    assert done.history.reason == "ContainerCannotRun"
    assert "apt-get install bubblewrap" in done.history.description


def test_a_bubblewrap_that_cannot_make_namespaces_counts_as_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # As in a container that blocks user namespaces: bwrap is there, but every run fails.
    broken = tmp_path / "bwrap"
    broken.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    broken.chmod(0o755)
    monkeypatch.setattr("shutil.which", lambda name: str(broken))
    sandbox.bwrap_binary.cache_clear()
    try:
        assert sandbox.bwrap_binary() is None
    finally:
        sandbox.bwrap_binary.cache_clear()


async def test_volume_cannot_escape_storage(
    platform: LocalPlatform, client: apolo_sdk.Client
) -> None:
    project = project_dir(platform)
    project.mkdir(parents=True)
    (project / "sneaky").symlink_to("/etc")
    job = await start(client, "true", volumes=[client.parse.volume("storage:sneaky:/mnt/x:ro")])
    done = await wait_for_status(client, job.id)
    assert done.status == apolo_sdk.JobStatus.FAILED
    assert done.history.reason == "ContainerCannotRun"
    assert "outside the storage" in done.history.description
