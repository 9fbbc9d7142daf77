"""Images mapped to local runtimes: which programs a job finds, and what its record says."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import apolo_sdk
import pytest

from airflow_neuro.localplatform import LocalPlatform
from airflow_neuro.localplatform.runtimes import choose_runtime, parse_runtimes, repository
from airflow_neuro.localplatform.spawn import spawned

from .conftest import login, platform_settings
from .helpers import read_log, wait_for_status

RUNNING = {apolo_sdk.JobStatus.RUNNING}


def fake_runtime(directory: Path, *, venv: bool = False) -> Path:
    """A prefix whose bin/ has ``hello``, a program the host does not have."""
    (directory / "bin").mkdir(parents=True)
    hello = directory / "bin" / "hello"
    hello.write_text(f'#!/bin/sh\necho "hello from {directory.name}"\n')
    hello.chmod(0o755)
    if venv:
        (directory / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return directory


@asynccontextmanager
async def platform_client(
    tmp_path: Path, runtimes: Mapping[str, Path]
) -> AsyncIterator[apolo_sdk.Client]:
    settings = dataclasses.replace(platform_settings(tmp_path / "platform"), runtimes=runtimes)
    async with LocalPlatform(settings) as platform:
        client = await login(platform.api_url, settings.token, tmp_path / "sdk-config")
        try:
            yield client
        finally:
            await client.close()


async def run(
    client: apolo_sdk.Client, image: str, command: str, **kwargs: object
) -> apolo_sdk.JobDescription:
    job = await client.jobs.start(
        image=client.parse.remote_image(image),
        preset_name="cpu-small",
        command=command,
        **kwargs,  # type: ignore[arg-type]
    )
    return await wait_for_status(client, job.id)


async def output(client: apolo_sdk.Client, job: apolo_sdk.JobDescription) -> str:
    return b"".join(await read_log(client, job.id)).decode()


def running_description(job: apolo_sdk.JobDescription) -> str:
    [running] = [t for t in job.history.transitions if t.status == apolo_sdk.JobStatus.RUNNING]
    return running.description


async def test_mapped_image_runs_the_runtimes_programs(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path / "jobs-env")
    async with platform_client(tmp_path, {"python:3.11": runtime}) as client:
        done = await run(client, "python:3.11", "sh -c 'hello; echo \"$PATH\"'")
        assert done.status == apolo_sdk.JobStatus.SUCCEEDED
        assert await output(client, done) == (
            "hello from jobs-env\n"
            f"{runtime}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        )
        assert running_description(done) == f"runtime {runtime} for image 'python:3.11'"

        # The SDK shows it as the job's description while the job runs.
        live = await client.jobs.start(
            image=client.parse.remote_image("python:3.11"),
            preset_name="cpu-small",
            command="sleep 30",
        )
        seen = await wait_for_status(client, live.id, RUNNING)
        assert seen.history.description == f"runtime {runtime} for image 'python:3.11'"
        await client.jobs.kill(live.id)


@pytest.mark.parametrize(
    ("key", "image", "recorded"),
    [
        ("python", "python:3.12", "python:3.12"),
        ("python", "python", "python:latest"),  # the SDK adds the tag an image has not
        ("ghcr.io/team/py", "ghcr.io/team/py:2", "ghcr.io/team/py:2"),
    ],
)
async def test_key_without_tag_matches_any_tag(
    tmp_path: Path, key: str, image: str, recorded: str
) -> None:
    runtime = fake_runtime(tmp_path / "any-tag")
    async with platform_client(tmp_path, {key: runtime}) as client:
        done = await run(client, image, "hello")
        assert done.status == apolo_sdk.JobStatus.SUCCEEDED
        assert await output(client, done) == "hello from any-tag\n"
        assert running_description(done) == f"runtime {runtime} for image '{recorded}'"


async def test_exact_key_wins_over_key_without_tag(tmp_path: Path) -> None:
    exact = fake_runtime(tmp_path / "exact")
    untagged = fake_runtime(tmp_path / "untagged")
    async with platform_client(tmp_path, {"python": untagged, "python:3.11": exact}) as client:
        assert await output(client, await run(client, "python:3.11", "hello")) == (
            "hello from exact\n"
        )
        assert await output(client, await run(client, "python:3.10", "hello")) == (
            "hello from untagged\n"
        )


async def test_unmapped_image_runs_on_the_host(tmp_path: Path) -> None:
    fake_runtime(tmp_path / "jobs-env")
    async with platform_client(tmp_path, {"python:3.11": tmp_path / "jobs-env"}) as client:
        missing = await run(client, "ubuntu:22.04", "hello --loud")
        assert missing.status == apolo_sdk.JobStatus.FAILED
        assert missing.history.reason == "ContainerCannotRun"
        assert missing.history.exit_code == 127
        assert missing.history.description == (
            'exec: "hello": executable file not found in $PATH'
            " (runs on the host: no runtime for image 'ubuntu:22.04')"
        )
        host = await run(client, "ubuntu:22.04", "sh -c 'echo \"$PATH\"'")
        assert host.status == apolo_sdk.JobStatus.SUCCEEDED
        assert await output(client, host) == (
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        )
        assert running_description(host) == "runs on the host: no runtime for image 'ubuntu:22.04'"


async def test_job_that_sets_path_keeps_its_own(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path / "jobs-env")
    async with platform_client(tmp_path, {"python:3.11": runtime}) as client:
        done = await run(client, "python:3.11", "hello", env={"PATH": "/usr/bin:/bin"})
        assert done.history.exit_code == 127
        assert done.history.description == (
            'exec: "hello": executable file not found in $PATH'
            f" (runtime {runtime} for image 'python:3.11')"
        )


@pytest.mark.parametrize("venv", [True, False])
async def test_virtual_env_only_for_a_venv(tmp_path: Path, venv: bool) -> None:
    runtime = fake_runtime(tmp_path / "jobs-env", venv=venv)
    async with platform_client(tmp_path, {"python:3.11": runtime}) as client:
        done = await run(client, "python:3.11", "env")
        env = dict(line.split("=", 1) for line in (await output(client, done)).splitlines())
        assert env.get("VIRTUAL_ENV") == (str(runtime) if venv else None)


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    path = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


async def test_real_venv_python_is_the_venvs(tmp_path: Path, venv: Path) -> None:
    async with platform_client(tmp_path, {"python:3.11": venv}) as client:
        done = await run(client, "python:3.11", "python3 -c 'import sys; print(sys.prefix)'")
        assert await output(client, done) == f"{venv}\n"


def test_repository_drops_tag_and_digest() -> None:
    assert repository("python:3.11") == "python"
    assert repository("python") == "python"
    assert repository("registry:5000/team/model") == "registry:5000/team/model"
    assert repository("registry:5000/team/model:v2") == "registry:5000/team/model"
    assert repository("python@sha256:abc") == "python"
    assert repository("image://local/local/default/model:v1") == "image://local/local/default/model"


def test_no_runtime_for_other_repositories(tmp_path: Path) -> None:
    runtimes = {"python": tmp_path}
    assert choose_runtime(runtimes, "python-slim:3").runtime is None
    assert choose_runtime(runtimes, "library/python:3").runtime is None
    assert choose_runtime({"python:3.11": tmp_path}, "python:3.12").runtime is None


def test_file_entries_are_relative_to_the_file(tmp_path: Path) -> None:
    jobs = fake_runtime(tmp_path / ".venv-jobs")
    other = fake_runtime(tmp_path / "other")
    conf = tmp_path / "conf"
    conf.mkdir()
    file = conf / "runtimes.json"
    file.write_text(json.dumps({"python:3.11": "../.venv-jobs", "ubuntu": str(other)}))
    assert parse_runtimes(file, []) == {"python:3.11": jobs, "ubuntu": other}
    # --runtime overrides the file's entry for the same image; paths come out absolute.
    overridden = parse_runtimes(
        file, ["ubuntu=" + str(jobs / ".." / "other" / ".." / ".venv-jobs")]
    )
    assert overridden == {"python:3.11": jobs, "ubuntu": jobs}


def test_relative_runtime_option_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_runtime(tmp_path / "rt")
    monkeypatch.chdir(tmp_path)
    assert parse_runtimes(None, ["python=rt"]) == {"python": tmp_path / "rt"}


@pytest.mark.parametrize(
    ("file_text", "entries", "message"),
    [
        (None, ["python:3.11"], "--runtime: expected IMAGE=DIR, got 'python:3.11'"),
        (None, ["=rt"], "--runtime: expected IMAGE=DIR, got '=rt'"),
        (None, ["python:3.11=nowhere"], "--runtime: python:3.11: {tmp}/nowhere has no bin/"),
        ("{not json", [], "--runtimes: {tmp}/runtimes.json is not JSON: "),
        ('["python:3.11"]', [], "--runtimes: {tmp}/runtimes.json must hold a JSON object"),
        ('{"python": 3}', [], "--runtimes: {tmp}/runtimes.json: 'python' must map to a dir"),
        ('{"python": "nowhere"}', [], "--runtimes: python: {tmp}/nowhere has no bin/"),
    ],
)
def test_bad_runtime_options(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_text: str | None,
    entries: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    file = None
    if file_text is not None:
        file = tmp_path / "runtimes.json"
        file.write_text(file_text)
    with pytest.raises(ValueError, match="^" + re.escape(message.format(tmp=tmp_path))):
        parse_runtimes(file, entries)


def test_missing_runtimes_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^--runtimes: cannot read .*missing\.json: No such"):
        parse_runtimes(tmp_path / "missing.json", [])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--runtime", "python:3.11"], "--runtime: expected IMAGE=DIR, got 'python:3.11'"),
        (["--runtime", "python=/nowhere"], "--runtime: python: /nowhere has no bin/ directory"),
        (
            ["--runtimes", "/nowhere/runtimes.json"],
            "--runtimes: cannot read /nowhere/runtimes.json: No such file or directory",
        ),
    ],
)
async def test_serve_refuses_bad_runtimes_in_one_line(
    tmp_path: Path, options: list[str], message: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "airflow_neuro.localplatform", "--port", "0",
        "--data-dir", str(tmp_path / "data"), *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert stdout == b""
    assert stderr.decode() == f"error: {message}\n"  # one line: no usage, no traceback


async def test_spawned_platform_takes_runtimes(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path / "spawned-env")
    with spawned(tmp_path / "data", runtimes={"python:3.11": runtime}) as served:
        client = await login(served.api_url, served.token, tmp_path / "cfg")
        try:
            done = await run(client, "python:3.11", "hello")
            assert await output(client, done) == "hello from spawned-env\n"
            assert running_description(done) == f"runtime {runtime} for image 'python:3.11'"
        finally:
            await client.close()
