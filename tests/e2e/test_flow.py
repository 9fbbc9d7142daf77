"""Jobs from an apolo-flow project file, run as Airflow tasks in real Airflow."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apolo_sdk
import pytest

from ..conftest import REPO, PlatformProcess
from .conftest import SCENARIOS
from .test_examples import only_job


def test_the_flow_example_runs_its_jobs(dags_test: Any, platform_process: PlatformProcess) -> None:
    result = dags_test("neuro_flow_jobs", conf={"rows": 7})
    assert result.states == {"prepare": "success", "total": "success"}, result.output

    prepare = only_job(platform_process, result, "prepare")
    assert str(prepare.container.image) == "ubuntu:22.04"  # images.base.ref through a mixin
    assert prepare.container.command is not None
    assert prepare.container.command.startswith("bash -euo pipefail -c ")
    assert "seq 1 7 >" in prepare.container.command  # the DAG run's conf filled the param
    assert prepare.container.env["GREETING"] == "hello from the project defaults"
    assert prepare.container.env["DATA"] == "/var/data"
    [volume] = prepare.container.volumes
    assert (str(volume.container_path), volume.read_only) == ("/var/data", False)
    assert str(volume.storage_uri).endswith("/flow-example/data")
    assert {"project:flow-example", "flow:live", "job:prepare", "example"} <= set(prepare.tags)
    assert prepare.life_span == 30 * 60  # defaults.life_span: 30m
    assert prepare.description == "Write the numbers 1 to N"
    assert prepare.status == apolo_sdk.JobStatus.SUCCEEDED
    # detach is false in the file: the task waited for the job and streamed its log.
    logged = "\n".join(result.task_log_lines("prepare"))
    assert "hello from the project defaults: wrote 7 numbers" in logged

    total = only_job(platform_process, result, "total")
    assert total.container.working_dir == "/var/data"
    assert total.container.command is not None
    assert total.container.command.startswith("python3 -uc ")
    assert total.container.env["RUN_ID"] == result.run_id  # the argument adds to the file's env
    logged = "\n".join(result.task_log_lines("total"))
    assert "hello from the project defaults: the sum of 7 numbers is 28" in logged
    assert result.xcom("total")["exit_code"] == 0
    assert platform_process.token not in result.output


APOLO_BIN = REPO / ".venv-apolo" / "bin"
COMPAT = Path(__file__).parent / "flows" / "compat"
COMPAT_PARAMS = {"scripted": {"count": "4", "word": "hi"}}


@pytest.fixture(scope="module")
def apolo_flow(
    platform_process: PlatformProcess, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., str]:
    """`apolo-flow` from .venv-apolo (apolo-sdk and neuro-sdk cannot share a virtualenv),
    logged in to the local platform with a HOME of its own: the CLI logs command lines,
    token included."""
    if not (APOLO_BIN / "apolo-flow").exists():
        pytest.skip("needs .venv-apolo with apolo-flow: make venv-apolo")
    home = tmp_path_factory.mktemp("apolo-home")
    config = home / ".apolo"
    # apolo-flow starts jobs with `apolo run` from PATH, with no options: this one adds
    # --skip-stats, and APOLO_CONFIG tells both where the login is.
    wrapper = home / "bin" / "apolo"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {APOLO_BIN / "apolo"} --skip-stats "$@"\n')
    wrapper.chmod(0o755)
    env = {
        "HOME": str(home),
        "PATH": os.pathsep.join([str(wrapper.parent), os.environ.get("PATH", os.defpath)]),
        "APOLO_CONFIG": str(config),
        "NEURO_CLI_DISABLE_PYPI_VERSION_CHECK": "1",
        "LANG": "C.UTF-8",
    }
    login = [str(wrapper), "config", "login-with-token", platform_process.token,
             platform_process.api_url]  # fmt: skip
    subprocess.run(login, env=env, check=True, capture_output=True, timeout=120)

    def run(project: Path, *args: str) -> str:
        done = subprocess.run(
            [str(APOLO_BIN / "apolo-flow"), *args], cwd=project, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout
        return done.stdout

    return run


def record(job: apolo_sdk.JobDescription) -> dict[str, Any]:
    """What the two ways of starting a flow job must agree on (not the name: apolo-flow
    names every job, the operator only when the file does)."""
    container = job.container
    http = container.http
    return {
        "image": str(container.image),
        "command": container.command,
        "entrypoint": container.entrypoint,
        "env": container.env,
        "volumes": [(str(v.storage_uri), v.container_path, v.read_only) for v in container.volumes],
        "working_dir": container.working_dir,
        "http": (http.port, http.requires_auth) if http else None,
        "tags": sorted(tag for tag in job.tags if not tag.startswith("airflow-")),
        "preset": job.preset_name,
        "life_span": job.life_span,
        "description": job.description,
        "schedule_timeout": job.schedule_timeout,
        "restart_policy": str(job.restart_policy),
    }


def test_apolo_flow_and_the_operator_start_the_same_jobs(
    dags_test: Any, platform_process: PlatformProcess, apolo_flow: Callable[..., str]
) -> None:
    ours = dags_test("flow_compat", SCENARIOS)
    assert set(ours.states.values()) == {"success"}, ours.output
    for job_id in ("plain", "scripted", "pythonic", "served"):
        params = [arg for name, value in COMPAT_PARAMS.get(job_id, {}).items()
                  for arg in ("--param", name, value)]  # fmt: skip
        # Without -d, apolo-flow follows the job until it ends, as the operator does.
        apolo_flow(COMPAT, "run", job_id, *params)
        theirs = [job for job in platform_process.jobs(f"job:{job_id}", "project:compat-proj")
                  if not any(tag.startswith("airflow-") for tag in job.tags)]  # fmt: skip
        [from_flow] = theirs
        [from_operator] = platform_process.jobs(f"airflow-run:{ours.run_id}",
                                                f"airflow-task:{job_id}")  # fmt: skip
        assert record(from_operator) == record(from_flow), job_id
        assert from_flow.status == from_operator.status == apolo_sdk.JobStatus.SUCCEEDED
    scripted = "\n".join(ours.task_log_lines("scripted"))
    assert "hi 4" in scripted
    assert "in /data, size small" in scripted
