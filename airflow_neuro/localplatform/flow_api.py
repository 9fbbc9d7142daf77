"""HTTP handlers for /api/v1/flow: what apolo-flow's live mode keeps on the platform.

Before it starts a live job, `apolo-flow run` finds its flow project by name (creating it
when the lookup answers 404) and records every live job of the flow with its tags; then it
runs `apolo run`, which uses the job API. `apolo-flow delete-flow` deletes a project and
shell completion lists them. Those calls are served here, with the real flow API's
(platform-neuro-flow-api) paths, bodies and status codes. Batch mode (bakes, attempts,
tasks, cache entries, images) is not: its paths answer 404 with a message saying so.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .errors import AccessDenied, BadRequest, RecordNotFound, shown
from .flow_store import FlowStore
from .json_body import read_json
from .settings import Settings

PREFIX = "/api/v1/flow"
NDJSON = "application/x-ndjson"
PROJECT_KEYS = {"name", "cluster", "org_name", "project_name"}
LIVE_JOB_KEYS = {"yaml_id", "project_id", "multi", "tags", "raw_id"}
# Names, ids and tags are short (a flow's id, a job's id in its YAML, "project:..." tags);
# these limits are far above them and keep every listing of projects and live jobs small.
MAX_TEXT_LENGTH = 1024
MAX_TAGS = 256


async def _body(request: web.Request, what: str, allowed: set[str]) -> dict[str, Any]:
    body = await read_json(request, f"Invalid {what}: ")
    if not isinstance(body, dict):
        raise BadRequest(f"Invalid {what}: the body is not a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Invalid {what}: {shown(unknown[0])}: is not allowed key")
    return body


def _str(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        problem = "is required" if value is None else "value is not a string"
        raise BadRequest(f"Invalid {what}: {key}: {problem}")
    _storable(value, f"Invalid {what}: {key}")
    return value


def _storable(value: str, where: str) -> None:
    """Text a flow record may keep: not too long, and UTF-8 (JSON may carry lone
    surrogates, "\\ud800", which no UTF-8 store can keep)."""
    if len(value) > MAX_TEXT_LENGTH:
        raise BadRequest(f"{where}: is longer than {MAX_TEXT_LENGTH} characters, the most allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{where}: is not valid Unicode text") from None


def _opt_str(body: dict[str, Any], key: str, what: str) -> str | None:
    return None if body.get(key) is None else _str(body, key, what)


def _query(request: web.Request, key: str) -> str:
    value = request.query.get(key)
    if not value:
        raise BadRequest(f"{key}: the query parameter is required")
    return value


async def _answer(request: web.Request, items: list[dict[str, Any]]) -> web.StreamResponse:
    """A list as the flow API sends it: NDJSON when asked for (apolo-flow always asks)."""
    if NDJSON not in request.headers.get("Accept", ""):
        return web.json_response(items)
    response = web.StreamResponse(headers={"Content-Type": NDJSON})
    await response.prepare(request)
    for item in items:
        await response.write(json.dumps(item).encode() + b"\n")
    await response.write_eof()
    return response


class FlowApi:
    def __init__(self, settings: Settings, store: FlowStore) -> None:
        self._settings = settings
        self._store = store

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/projects", self.list_projects),
            web.post(f"{PREFIX}/projects", self.create_project),
            web.get(f"{PREFIX}/projects/by_name", self.project_by_name),
            web.get(f"{PREFIX}/projects/{{id}}", self.get_project),
            web.delete(f"{PREFIX}/projects/{{id}}", self.delete_project),
            web.get(f"{PREFIX}/live_jobs", self.list_live_jobs),
            web.put(f"{PREFIX}/live_jobs/replace", self.replace_live_job),
            # Last: whatever else of the flow API a client asks for.
            web.route("*", f"{PREFIX}/{{tail:.*}}", self.not_served),
        ]

    def _check_access(self, cluster: str, org_name: str | None, project_name: str) -> None:
        # The real API checks write permission on flow://cluster/org/project; the one user
        # here may write to the one project only.
        s = self._settings
        if (cluster, org_name, project_name) != (s.cluster, s.org, s.project):
            org = f"/{org_name}" if org_name else ""
            raise AccessDenied(f"no permission to write flow://{cluster}{org}/{project_name}")

    async def list_projects(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        # Without org_name any org matches; an empty one means projects with no org.
        projects = self._store.projects(
            name=q.get("name"),
            owner=q.get("owner"),
            cluster=q.get("cluster"),
            org_name=q.get("org_name") or None,
            any_org="org_name" not in q,
            project_name=q.get("project_name"),
        )
        return await _answer(request, [p.to_api() for p in projects])

    async def create_project(self, request: web.Request) -> web.Response:
        what = "flow project"
        body = await _body(request, what, PROJECT_KEYS)
        name = _str(body, "name", what)
        cluster = _str(body, "cluster", what)
        org_name = _opt_str(body, "org_name", what) or None
        # As on the real API, a project with no platform project is the user's own.
        project_name = _opt_str(body, "project_name", what) or self._settings.user
        self._check_access(cluster, org_name, project_name)
        project = self._store.create_project(
            name=name,
            owner=self._settings.user,
            cluster=cluster,
            org_name=org_name,
            project_name=project_name,
        )
        return web.json_response(project.to_api(), status=201)

    async def project_by_name(self, request: web.Request) -> web.Response:
        q = request.query
        # The real API looks under `project_name`, else under `owner`, else the caller.
        project = self._store.project_by_name(
            name=_query(request, "name"),
            cluster=_query(request, "cluster"),
            org_name=q.get("org_name") or None,
            project_name=q.get("project_name") or q.get("owner") or self._settings.user,
        )
        return web.json_response(project.to_api())

    async def get_project(self, request: web.Request) -> web.Response:
        return web.json_response(self._store.project(request.match_info["id"]).to_api())

    async def delete_project(self, request: web.Request) -> web.Response:
        project = self._store.project(request.match_info["id"])
        self._check_access(project.cluster, project.org_name, project.project_name)
        self._store.delete_project(project.id)
        return web.Response(status=204)

    async def list_live_jobs(self, request: web.Request) -> web.StreamResponse:
        project_id = _query(request, "project_id")
        # An unknown project has no live jobs: the real API answers an empty list too.
        jobs = self._store.live_jobs(project_id)
        return await _answer(request, [job.to_api() for job in jobs])

    async def replace_live_job(self, request: web.Request) -> web.Response:
        what = "live job"
        body = await _body(request, what, LIVE_JOB_KEYS)
        project_id = _str(body, "project_id", what)
        yaml_id = _str(body, "yaml_id", what)
        multi = body.get("multi")
        if not isinstance(multi, bool):
            raise BadRequest(f"Invalid {what}: multi: value should be True or False")
        tags = body.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BadRequest(f"Invalid {what}: tags: a list of strings is required")
        if len(tags) > MAX_TAGS:
            raise BadRequest(f"Invalid {what}: tags: at most {MAX_TAGS} tags are allowed")
        for tag in tags:
            _storable(tag, f"Invalid {what}: tags")
        raw_id = _opt_str(body, "raw_id", what) or ""
        self._store.project(project_id)  # 404 for an unknown project
        job = self._store.replace_live_job(
            project_id=project_id, yaml_id=yaml_id, multi=multi, tags=tags, raw_id=raw_id
        )
        # 201 even when an existing record was overwritten, as the real API answers.
        return web.json_response(job.to_api(), status=201)

    async def not_served(self, request: web.Request) -> web.Response:
        raise RecordNotFound(
            f"{request.method} {request.path} is not served: the local platform's flow API"
            " keeps the projects and live jobs of apolo-flow's live mode only (no bakes)"
        )
