"""The official `apolo-flow` CLI 26.7 running a live job on the local platform."""

from __future__ import annotations

import shlex
from pathlib import Path

import aiohttp
import apolo_sdk

from airflow_neuro.localplatform import LocalPlatform

from .helpers import Cli

PROJECT = Path(__file__).with_name("flows") / "smoke"
SCRIPT = 'echo "hello $WHO from $FROM_PROJECT"\n'


async def test_flow_run_starts_the_live_job(
    cli: Cli, client: apolo_sdk.Client, platform: LocalPlatform
) -> None:
    # Without -d, `apolo-flow run` follows the job's output until it ends.
    _, out, _ = await cli.flow("run", "greet", "--param", "who", "flow", cwd=PROJECT)
    assert "hello flow from project defaults\n" in out.decode()

    async with client.jobs.list(tags={"job:greet", "project:smoke"}) as listed:
        [job] = [job async for job in listed]
    assert job.status == apolo_sdk.JobStatus.SUCCEEDED
    assert job.name == "smoke-greet"
    assert job.description == "Greet someone"
    assert sorted(job.tags) == ["flow:live", "job:greet", "project:smoke", "smoke"]
    # `bash:` becomes bash -euo pipefail -c SCRIPT; `apolo run` sends the arguments joined.
    assert job.container.command == shlex.join(["bash", "-euo", "pipefail", "-c", SCRIPT])
    assert job.container.env == {"FROM_PROJECT": "project defaults", "WHO": "flow"}
    # Nothing in live.yml sets these: `apolo run` picks the first preset and port 80.
    assert job.preset_name == "cpu-small"
    assert job.life_span == 600
    assert job.container.http is not None
    assert (job.container.http.port, job.container.http.requires_auth) == (80, True)

    # Before starting it, apolo-flow recorded the flow's project and live jobs.
    headers = {"Authorization": f"Bearer {platform.settings.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        flow = f"{platform.api_url}/flow"
        async with http.get(f"{flow}/projects", params={"name": "smoke"}) as resp:
            [project] = await resp.json()
        assert project["project_name"] == "default"
        live_jobs = f"{flow}/live_jobs"
        async with http.get(live_jobs, params={"project_id": project["id"]}) as resp:
            [live_job] = await resp.json()
    assert live_job["yaml_id"] == "greet"
    assert sorted(live_job["tags"]) == ["flow:live", "job:greet", "project:smoke", "smoke"]
