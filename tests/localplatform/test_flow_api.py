"""The flow API: the projects and live jobs apolo-flow's live mode keeps, over real HTTP.

The requests are the ones apolo-flow 26.7 sends (storage/api.py); tests/apolo/test_flow.py
runs apolo-flow itself against the platform.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from airflow_neuro.localplatform import LocalPlatform

from .conftest import platform_settings

PROJECT = {"name": "my_flow", "project_name": "default", "cluster": "local", "org_name": "local"}
# The query `apolo-flow run` sends to find its project before creating it.
BY_NAME = {**PROJECT, "owner": "local"}


def url(platform: LocalPlatform, path: str) -> str:
    return f"{platform.api_url}/flow/{path}"


async def call(
    http: aiohttp.ClientSession,
    method: str,
    address: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with http.request(method, address, json=body, params=params) as resp:
        if resp.status == 204:
            return resp.status, None
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, await resp.json()


async def ndjson(http: aiohttp.ClientSession, address: str, **params: str) -> list[Any]:
    headers = {"Accept": "application/x-ndjson"}
    async with http.get(address, params=params, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-ndjson"
        return [json.loads(line) async for line in resp.content]


async def create_project(platform: LocalPlatform, http: aiohttp.ClientSession) -> dict[str, Any]:
    status, project = await call(http, "POST", url(platform, "projects"), body=PROJECT)
    assert status == 201, project
    return dict(project)


async def test_live_run_finds_or_creates_its_project(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    by_name = url(platform, "projects/by_name")
    status, body = await call(http, "GET", by_name, params=BY_NAME)
    # 404, which the SDK raises as ResourceNotFound: apolo-flow then creates the project.
    assert status == 404
    assert body == {
        "error": "no flow project 'my_flow' in cluster 'local', org 'local', project 'default'"
    }

    project = await create_project(platform, http)
    assert project.pop("id").startswith("projects-")
    assert project == {**PROJECT, "owner": "local"}

    status, found = await call(http, "GET", by_name, params=BY_NAME)
    assert status == 200
    assert found == {"id": found["id"], **project}
    assert await call(http, "GET", url(platform, f"projects/{found['id']}")) == (200, found)
    # The same flow in the same platform project is one project.
    assert await call(http, "POST", url(platform, "projects"), body=PROJECT) == (
        409,
        {"error": "Project with such name exists"},
    )


async def test_projects_are_listed_as_json_or_ndjson_with_filters(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    first = await create_project(platform, http)
    status, second = await call(
        http, "POST", url(platform, "projects"), body={**PROJECT, "name": "other"}
    )
    assert status == 201
    projects = url(platform, "projects")
    assert await call(http, "GET", projects) == (200, [first, second])
    assert await ndjson(http, projects) == [first, second]
    assert await ndjson(http, projects, name="other", cluster="local") == [second]
    assert await ndjson(http, projects, org_name="local", owner="local") == [first, second]
    # An empty org_name means projects with no org; every project here has one.
    assert await ndjson(http, projects, org_name="") == []
    assert await ndjson(http, projects, project_name="elsewhere") == []


async def test_live_jobs_are_replaced_by_yaml_id(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    project = await create_project(platform, http)
    replace = url(platform, "live_jobs/replace")
    sent = {
        "project_id": project["id"],
        "yaml_id": "train",
        "tags": ["project:my-flow", "flow:live", "job:train"],
        "multi": False,
    }
    status, job = await call(http, "PUT", replace, body=sent)
    # 201 whether the record is new or not, as the real API answers.
    assert status == 201
    assert job["id"].startswith("live-job-")
    assert job == {"id": job["id"], **sent, "raw_id": ""}

    again = {**sent, "tags": ["job:train"], "multi": True, "raw_id": "job-1"}
    status, replaced = await call(http, "PUT", replace, body=again)
    assert (status, replaced) == (201, {"id": job["id"], **again})
    await call(http, "PUT", replace, body={**sent, "yaml_id": "serve"})

    live_jobs = url(platform, "live_jobs")
    listed = await ndjson(http, live_jobs, project_id=project["id"])
    assert [j["yaml_id"] for j in listed] == ["serve", "train"]
    assert listed[1] == replaced
    status, as_json = await call(http, "GET", live_jobs, params={"project_id": project["id"]})
    assert (status, as_json) == (200, listed)
    # As on the real API, an unknown project simply has no live jobs.
    assert await ndjson(http, live_jobs, project_id="projects-nope") == []


async def test_deleting_a_project_deletes_its_live_jobs(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    project = await create_project(platform, http)
    live_job = {"project_id": project["id"], "yaml_id": "a", "tags": [], "multi": False}
    assert (await call(http, "PUT", url(platform, "live_jobs/replace"), body=live_job))[0] == 201
    address = url(platform, f"projects/{project['id']}")

    assert await call(http, "DELETE", address) == (204, None)
    assert await call(http, "GET", address) == (
        404,
        {"error": f"no such flow project {project['id']}"},
    )
    assert await ndjson(http, url(platform, "live_jobs"), project_id=project["id"]) == []
    assert (await call(http, "DELETE", address))[0] == 404
    # The name is free again.
    assert (await call(http, "POST", url(platform, "projects"), body=PROJECT))[0] == 201


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({**PROJECT, "id": "x"}, "Invalid flow project: id: is not allowed key"),
        ({"cluster": "local"}, "Invalid flow project: name: is required"),
        ({**PROJECT, "cluster": 1}, "Invalid flow project: cluster: value is not a string"),
        ([PROJECT], "Invalid flow project: the body is not a JSON object"),
    ],
)
async def test_bad_project_requests_are_400(
    platform: LocalPlatform, http: aiohttp.ClientSession, body: Any, error: str
) -> None:
    assert await call(http, "POST", url(platform, "projects"), body=body) == (
        400,
        {"error": error},
    )


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"cluster": "other"}, "flow://other/local/default"),
        ({"org_name": None}, "flow://local/default"),
        # Without a project_name the real API takes the user's name, not a project here.
        ({"project_name": None}, "flow://local/local/local"),
    ],
)
async def test_projects_outside_the_platform_project_are_403(
    platform: LocalPlatform, http: aiohttp.ClientSession, change: dict[str, Any], where: str
) -> None:
    body = {k: v for k, v in {**PROJECT, **change}.items() if v is not None}
    assert await call(http, "POST", url(platform, "projects"), body=body) == (
        403,
        {"error": f"no permission to write {where}"},
    )


async def test_bad_live_job_requests_are_4xx(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    project = await create_project(platform, http)
    replace = url(platform, "live_jobs/replace")
    good = {"project_id": project["id"], "yaml_id": "a", "tags": [], "multi": False}
    for body, status, error in (
        ({**good, "multi": "no"}, 400, "Invalid live job: multi: value should be True or False"),
        ({**good, "tags": "a"}, 400, "Invalid live job: tags: a list of strings is required"),
        ({**good, "when": 1}, 400, "Invalid live job: when: is not allowed key"),
        ({**good, "project_id": "projects-x"}, 404, "no such flow project projects-x"),
        (
            {**good, "yaml_id": "\ud800"},
            400,
            "Invalid live job: yaml_id: is not valid Unicode text",
        ),
        ({**good, "tags": ["\udfff"]}, 400, "Invalid live job: tags: is not valid Unicode text"),
    ):
        assert await call(http, "PUT", replace, body=body) == (status, {"error": error}), body
    for raw in (b"{", b"[" * 100_000 + b"]" * 100_000):
        async with http.put(replace, data=raw) as resp:
            assert resp.status == 400
            assert await resp.json() == {"error": "Invalid live job: the body is not valid JSON"}
    for path in ("projects/by_name", "live_jobs"):
        status, body = await call(http, "GET", url(platform, path))
        assert status == 400, path
        assert body["error"].endswith(": the query parameter is required")


async def test_batch_mode_paths_are_404_with_a_reason(
    platform: LocalPlatform, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, "POST", url(platform, "bakes"), body={})
    assert status == 404
    assert body == {
        "error": "POST /api/v1/flow/bakes is not served: the local platform's flow API keeps"
        " the projects and live jobs of apolo-flow's live mode only (no bakes)"
    }


async def test_the_flow_api_wants_the_token(platform: LocalPlatform) -> None:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url(platform, "projects")) as r:
        assert r.status == 401


async def test_projects_survive_a_restart(tmp_path: Path) -> None:
    settings = platform_settings(tmp_path / "platform")
    headers = {"Authorization": f"Bearer {settings.token}"}
    async with LocalPlatform(settings) as first, aiohttp.ClientSession(headers=headers) as http:
        project = await create_project(first, http)
    async with LocalPlatform(settings) as second, aiohttp.ClientSession(headers=headers) as http:
        by_name = url(second, "projects/by_name")
        assert await call(http, "GET", by_name, params=BY_NAME) == (200, project)
