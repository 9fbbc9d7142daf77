"""Malformed requests to the job, flow and config APIs: each is refused with a 4xx that
names what is wrong, and the platform goes on serving.

One platform serves the whole table; after every case it must still answer a normal
request, so that a case that broke it fails there rather than in the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from airflow_neuro.localplatform import LocalPlatform

from .conftest import platform_settings

# Raw HTTP against the server alone: no Airflow and no SDK in it (see the "once" marker).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.once]

MiB = 2**20
MAX_LIFE_SPAN = 100 * 365 * 24 * 60  # minutes
JOB = "{job}"  # stands for the id of a live job with a 60-minute life span


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # under /api/v1, already URL-encoded
    body: bytes | None
    status: int
    says: str  # a part of the error message; "" when the answer is not a JSON error
    chunked: bool = False  # sent with Transfer-Encoding: chunked, no Content-Length


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


RUN_RESOURCES = {"cpu": 0.5, "memory": 128 * MiB}
RUN_CONTAINER = {"image": "ubuntu", "command": "true", "resources": RUN_RESOURCES}
START = {"image": "ubuntu", "command": "true", "preset_name": "cpu-small"}
PROJECT = {"name": "my_flow", "project_name": "default", "cluster": "local", "org_name": "local"}
LIVE_JOB = {"project_id": "projects-x", "yaml_id": "a", "tags": [], "multi": False}


def run(**container: Any) -> bytes:
    """A ``POST /jobs`` body (what jobs.run sends) with the container fields changed."""
    return js({"container": {**RUN_CONTAINER, **container}})


def resources(**fields: Any) -> bytes:
    """A ``POST /jobs`` body with exactly these resources."""
    return js({"container": {**RUN_CONTAINER, "resources": fields}})


def start(**fields: Any) -> bytes:
    """A ``POST /jobs?from_preset`` body (what jobs.start sends) with fields changed."""
    return js({**START, **fields})


def raw_start(fragment: str) -> bytes:
    """A from_preset body with a member written out by hand: Python's json would not
    write NaN as a client does."""
    return js(START)[:-1] + b", " + fragment.encode() + b"}"


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


DEEP = b"[" * 100_000 + b"]" * 100_000
TWO_MIB = js({**START, "description": "x" * (2 * MiB)})


def post_run(name: str, body: bytes, says: str, status: int = 400) -> Case:
    return Case(f"run-{name}", "POST", "jobs", body, status, says)


def post_start(name: str, body: bytes, says: str, status: int = 400) -> Case:
    return Case(f"start-{name}", "POST", "jobs?from_preset", body, status, says)


def bump(
    name: str, body: bytes, says: str = "additional_max_run_time_minutes", status: int = 400
) -> Case:
    return Case(f"bump-{name}", "PUT", f"jobs/{JOB}/max_run_time_minutes", body, status, says)


def listing(name: str, query: str, says: str) -> Case:
    return Case(f"list-{name}", "GET", f"jobs?{query}", None, 400, says)


MEMORY_MB = "container.resources.memory_mb: value should be an integer between 1 and"
MEMORY = "container.resources.memory: value should be an integer between 1 and"
CPU = "container.resources.cpu: value should be a number greater than 0 and at most"
PORT = "container.http.port: value should be an integer between 1 and 65535"
LIFE_SPAN = "max_run_time_minutes: value should be an integer between 1 and 52560000"
TIMEOUT = "schedule_timeout: value should be a number of seconds, at least 1"
NOT_JSON = "the body is not valid JSON"
TOO_LARGE = "the body is larger than 1048576 bytes (1 MiB)"

JOB_CREATE = [
    # Resources of POST /jobs (jobs.run).
    post_run("memory_mb-string", resources(cpu=1, memory_mb="abc"), MEMORY_MB),
    post_run("memory_mb-null", resources(cpu=1, memory_mb=None), MEMORY_MB),
    post_run("memory_mb-list", resources(cpu=1, memory_mb=[1]), MEMORY_MB),
    post_run("memory_mb-bool", resources(cpu=1, memory_mb=True), MEMORY_MB),
    post_run("memory_mb-float", resources(cpu=1, memory_mb=1.5), MEMORY_MB),
    post_run("memory_mb-zero", resources(cpu=1, memory_mb=0), MEMORY_MB),
    post_run("memory_mb-huge", resources(cpu=1, memory_mb=10**30), MEMORY_MB),
    post_run("memory-string", resources(cpu=1, memory="1G"), MEMORY),
    post_run("memory-negative", resources(cpu=1, memory=-1), MEMORY),
    post_run("memory-bool", resources(cpu=1, memory=True), MEMORY),
    post_run("memory-over-1-PiB", resources(cpu=1, memory=2**60), MEMORY),
    post_run("memory-missing", resources(cpu=1), "container.resources.memory: is required"),
    post_run(
        "cpu-nan",
        b'{"container": {"image": "u", "resources": {"cpu": NaN, "memory": 9}}}',
        "NaN is not a number JSON allows",
    ),
    post_run(
        "cpu-infinity",
        b'{"container": {"image": "u", "resources": {"cpu": Infinity, "memory": 9}}}',
        "Infinity is not a number JSON allows",
    ),
    post_run(
        "cpu-minus-infinity",
        b'{"container": {"image": "u", "resources": {"cpu": -Infinity, "memory": 9}}}',
        "-Infinity is not a number JSON allows",
    ),
    post_run(
        "cpu-1e999",
        b'{"container": {"image": "u", "resources": {"cpu": 1e999, "memory": 9}}}',
        "1e999 is out of range; numbers must be finite",
    ),
    post_run("cpu-bool", resources(cpu=True, memory=MiB), CPU),
    post_run("cpu-string", resources(cpu="1", memory=MiB), CPU),
    post_run("cpu-zero", resources(cpu=0, memory=MiB), CPU),
    post_run("cpu-negative", resources(cpu=-1, memory=MiB), CPU),
    post_run("cpu-1e308", resources(cpu=1e308, memory=MiB), CPU),
    post_run("cpu-null", resources(cpu=None, memory=MiB), CPU),
    post_run("resources-string", run(resources="x"), "container.resources: value is not a dict"),
    post_run("resources-list", run(resources=[]), "container.resources: value is not a dict"),
    post_run(
        "resources-unknown-key",
        resources(cpu=1, memory=MiB, disk=1),
        "container.resources.disk: is not allowed key",
    ),
    post_run(
        "resources-gpu",
        resources(cpu=1, memory=MiB, nvidia_gpu=1),
        "container.resources: GPUs and TPUs are not available",
    ),
    post_run(
        "shm-string",
        resources(cpu=1, memory=MiB, shm="x"),
        "container.resources.shm: value should be True or False",
    ),
    # The rest of the container.
    post_run("container-missing", js({"name": "abc"}), "container: is required"),
    post_run("container-string", js({"container": "ubuntu"}), "container: is required"),
    post_run("container-unknown-key", run(colour="red"), "container.colour: is not allowed key"),
    post_run(
        "image-missing",
        js({"container": {"resources": RUN_RESOURCES}}),
        "container.image: is required",
    ),
    post_run("image-number", run(image=5), "container.image: value is not a string"),
    post_run("image-empty", run(image=" "), "container.image: must not be empty"),
    post_run(
        "image-too-long", run(image="u" * 1025), "container.image: is longer than 1024 characters"
    ),
    post_run("image-surrogate", run(image="u\ud800"), "container.image: is not valid Unicode"),
    post_run("image-nul", run(image="u\0"), "container.image: must not contain NUL"),
    post_run("command-number", run(command=5), "container.command: value is not a string"),
    post_run(
        "command-too-long",
        run(command="x" * 131_073),
        "container.command: is longer than 131072 characters",
    ),
    post_run("command-nul", run(command="echo \0"), "container.command: must not contain NUL"),
    post_run("entrypoint-list", run(entrypoint=["sh"]), "container.entrypoint: value is not a"),
    post_run(
        "entrypoint-too-long",
        run(entrypoint="x" * 131_073),
        "container.entrypoint: is longer than 131072 characters",
    ),
    post_run(
        "working_dir-relative",
        run(working_dir="tmp"),
        "container.working_dir: must be an absolute path",
    ),
    post_run(
        "working_dir-too-long",
        run(working_dir="/" + "d" * 4096),
        "container.working_dir: is longer than 4096 characters",
    ),
    post_run("env-list", run(env=["A=1"]), "container.env: value is not a dict"),
    post_run("env-value-number", run(env={"A": 1}), "container.env.A: value is not a string"),
    post_run("env-value-null", run(env={"A": None}), "container.env.A: value is not a string"),
    post_run("env-name-empty", run(env={"": "1"}), "container.env: '' is not a variable name"),
    post_run("env-name-equals", run(env={"A=B": "1"}), "container.env: 'A=B' is not a variable"),
    post_run("env-name-nul", run(env={"A\0": "1"}), "is not a variable name"),
    post_run("env-name-too-long", run(env={"A" * 1025: "1"}), "is not a variable name (1-1024"),
    post_run(
        "env-too-many",
        run(env={f"V{i}": "1" for i in range(1025)}),
        "container.env: has more than 1024 variables",
    ),
    post_run(
        "env-value-too-long",
        run(env={"A": "x" * 131_073}),
        "container.env.A: is longer than 131072 characters",
    ),
    post_run(
        "env-value-surrogate",
        run(env={"A": "\udfff"}),
        "container.env.A: is not valid Unicode text",
    ),
    post_run("env-value-nul", run(env={"A": "a\0b"}), "container.env.A: must not contain NUL"),
    post_run("volumes-dict", run(volumes={}), "container.volumes: value is not a list"),
    post_run(
        "volumes-too-many",
        run(
            volumes=[
                {"src_storage_uri": "storage://local/local/default/d", "dst_path": f"/m/{i}"}
                for i in range(129)
            ]
        ),
        "container.volumes: has more than 128 volumes",
    ),
    post_run(
        "volume-string", run(volumes=["storage:d:/m"]), "container.volumes[0]: value is not a dict"
    ),
    post_run(
        "volume-no-dst",
        run(volumes=[{"src_storage_uri": "storage://local/x"}]),
        "container.volumes[0].dst_path: is required",
    ),
    post_run(
        "volume-not-storage",
        run(volumes=[{"src_storage_uri": "s3://b", "dst_path": "/m"}]),
        "container.volumes[0].src_storage_uri: must be a storage:// URI",
    ),
    post_run(
        "volume-relative-dst",
        run(volumes=[{"src_storage_uri": "storage://local/x", "dst_path": "m"}]),
        "container.volumes[0].dst_path: must be an absolute path",
    ),
    post_run(
        "volume-read_only-string",
        run(
            volumes=[{"src_storage_uri": "storage://local/x", "dst_path": "/m", "read_only": "yes"}]
        ),
        "container.volumes[0].read_only: value should be True or False",
    ),
    post_run(
        "volume-unknown-key",
        run(volumes=[{"src_storage_uri": "storage://local/x", "dst_path": "/m", "x": 1}]),
        "container.volumes[0].x: is not allowed key",
    ),
    post_run(
        "volume-dst-too-long",
        run(volumes=[{"src_storage_uri": "storage://local/x", "dst_path": "/" * 4097}]),
        "container.volumes[0].dst_path: is longer than 4096 characters",
    ),
    post_run("http-port-bool", run(http={"port": True}), PORT),
    post_run("http-port-string", run(http={"port": "80"}), PORT),
    post_run("http-port-zero", run(http={"port": 0}), PORT),
    post_run("http-port-65536", run(http={"port": 65536}), PORT),
    post_run("http-port-float", run(http={"port": 80.0}), PORT),
    post_run("http-string", run(http="80"), PORT),
    post_run(
        "http-requires_auth-string",
        run(http={"port": 80, "requires_auth": "yes"}),
        "container.http.requires_auth: value should be True or False",
    ),
    post_run("tty-string", run(tty="yes"), "container.tty: value should be True or False"),
    post_run(
        "secret_env",
        run(secret_env={"A": "secret://local/local/default/a"}),
        "container.secret_env: secrets and disks are not available",
    ),
    # Job fields, as jobs.start sends them beside the container's.
    post_start(
        "life-span-infinity",
        raw_start('"max_run_time_minutes": Infinity'),
        "Infinity is not a number JSON allows",
    ),
    post_start(
        "life-span-nan", raw_start('"max_run_time_minutes": NaN'), "NaN is not a number JSON allows"
    ),
    post_start("life-span-1e30", start(max_run_time_minutes=10**30), LIFE_SPAN),
    post_start(
        "life-span-over-100-years", start(max_run_time_minutes=MAX_LIFE_SPAN + 1), LIFE_SPAN
    ),
    post_start("life-span-bool", start(max_run_time_minutes=True), LIFE_SPAN),
    post_start("life-span-zero", start(max_run_time_minutes=0), LIFE_SPAN),
    post_start("life-span-float", start(max_run_time_minutes=1.5), LIFE_SPAN),
    post_start("life-span-string", start(max_run_time_minutes="10"), LIFE_SPAN),
    post_start(
        "schedule_timeout-infinity",
        raw_start('"schedule_timeout": Infinity'),
        "Infinity is not a number JSON allows",
    ),
    post_start("schedule_timeout-half-second", start(schedule_timeout=0.5), TIMEOUT),
    post_start("schedule_timeout-30-days", start(schedule_timeout=30 * 24 * 3600), TIMEOUT),
    post_start("schedule_timeout-bool", start(schedule_timeout=True), TIMEOUT),
    post_start("schedule_timeout-string", start(schedule_timeout="5"), TIMEOUT),
    post_start(
        "description-too-long",
        start(description="d" * 16_385),
        "description: is longer than 16384 characters",
    ),
    post_start("description-number", start(description=5), "description: value is not a string"),
    post_start("name-number", start(name=5), "name: value is not a string"),
    post_start("name-41-chars", start(name="a" * 41), "name: length should be between 3 and 40"),
    post_start("name-10000-chars", start(name="a" * 10_000), "name: is longer than 256 characters"),
    post_start(
        "tags-17", start(tags=[f"t{i}" for i in range(17)]), "tags: list length is greater than 16"
    ),
    post_start("tag-257-chars", start(tags=["t" * 257]), "is not a valid tag (1-256 chars"),
    post_start("tags-string", start(tags="a"), "tags: value is not a list of strings"),
    post_start("tags-numbers", start(tags=[1]), "tags: value is not a list of strings"),
    post_start("preset_name-number", start(preset_name=5), "preset_name: value is not a string"),
    post_start("preset_name-unknown", start(preset_name="gpu-huge"), "Preset was not found"),
    post_start("preset_name-missing", js({"image": "ubuntu"}), "preset_name: is required"),
    post_start(
        "preset-with-cpu",
        start(resources={"cpu": 1}),
        "resources: only shm can be set with a preset",
    ),
    post_start("restart_policy-always", start(restart_policy="always"), "restart_policy: only"),
    post_start("priority-unknown", start(priority="urgent"), "priority: value must be one of"),
    post_start("privileged-string", start(privileged="yes"), "privileged: value should be True"),
    post_start("pass_config-string", start(pass_config="no"), "pass_config: value should be True"),
    post_start(
        "scheduler_enabled-int",
        start(scheduler_enabled=1),
        "scheduler_enabled: value should be True or False",
    ),
    post_start(
        "wait_for_jobs_quota-string",
        start(wait_for_jobs_quota="x"),
        "wait_for_jobs_quota: value should be True or False",
    ),
    post_start(
        "is_preemptible-string",
        start(is_preemptible="x"),
        "is_preemptible: value should be True or False",
    ),
    post_start(
        "energy_schedule_name-number",
        start(energy_schedule_name=5),
        "energy_schedule_name: value is not a string",
    ),
    post_start("cluster_name-other", start(cluster_name="other"), "cluster_name 'other' is not"),
    post_start(
        "cluster_name-list", start(cluster_name=["local"]), "cluster_name: value is not a string"
    ),
    post_start("org_name-number", start(org_name=5), "org_name: value is not a string"),
    post_start(
        "project_name-other",
        start(project_name="p" * 1000),
        f"project_name '{'p' * 64}...' is not served here",
    ),
    post_start("unknown-key", start(colour="red"), "colour: is not allowed key"),
    post_start("unknown-long-key", start(**{"k" * 5000: 1}), f"{'k' * 64}...: is not allowed key"),
    # The body itself.
    post_start("not-json", b"{not json", NOT_JSON),
    post_start("empty", b"", NOT_JSON),
    post_start("not-utf-8", b'{"image": "\xff"}', NOT_JSON),
    post_start("utf-16", js(START).decode().encode("utf-16"), NOT_JSON),
    post_start("trailing-garbage", js(START) + b" x", NOT_JSON),
    post_start("array", js([START]), "the body must be a JSON object"),
    post_start("string", js("image"), "the body must be a JSON object"),
    post_start("null", b"null", "the body must be a JSON object"),
    post_start("nested-100000-deep", DEEP, NOT_JSON),
    post_start(
        "nested-40-deep",
        start(description=nested(40)),
        "arrays and objects may nest at most 32 deep",
    ),
    post_start(
        "integer-5000-digits",
        raw_start('"max_run_time_minutes": ' + "9" * 5000),
        "integers may have at most 4300 digits",
    ),
    post_start("two-MiB", TWO_MIB, TOO_LARGE, 413),
    Case(
        "start-two-MiB-chunked", "POST", "jobs?from_preset", TWO_MIB, 413, TOO_LARGE, chunked=True
    ),
]

BUMPS = [
    bump("1e400", js({"additional_max_run_time_minutes": 10**400})),
    bump("infinity", b'{"additional_max_run_time_minutes": Infinity}', "Infinity is not a"),
    bump("nan", b'{"additional_max_run_time_minutes": NaN}', "NaN is not a number"),
    bump("string", js({"additional_max_run_time_minutes": "5"})),
    bump("float", js({"additional_max_run_time_minutes": 1.5})),
    bump("bool", js({"additional_max_run_time_minutes": True})),
    bump("zero", js({"additional_max_run_time_minutes": 0})),
    bump("negative", js({"additional_max_run_time_minutes": -5})),
    bump("null", js({"additional_max_run_time_minutes": None})),
    # The job has 60 minutes: this would take it one minute past the maximum.
    bump(
        "sum-over-100-years",
        js({"additional_max_run_time_minutes": MAX_LIFE_SPAN - 59}),
        f"value should be at most {MAX_LIFE_SPAN - 60}",
    ),
    bump("missing", js({}), "additional_max_run_time_minutes: is required"),
    bump(
        "unknown-key",
        js({"additional_max_run_time_minutes": 1, "max_run_time_minutes": 5}),
        "max_run_time_minutes: is not allowed key",
    ),
    bump("array", js([1]), "the body must be a JSON object"),
    bump("not-json", b"five", NOT_JSON),
    bump("two-MiB", js({"additional_max_run_time_minutes": 1, "x": "x" * 2 * MiB}), TOO_LARGE, 413),
    Case(
        "bump-unknown-job",
        "PUT",
        "jobs/job-nope/max_run_time_minutes",
        js({"additional_max_run_time_minutes": 1}),
        400,
        "no such job job-nope",
    ),
]

JOB_QUERIES = [
    listing("status-unknown", "status=bogus", "status: unknown status 'bogus'"),
    listing("limit-word", "limit=many", "limit: value is not an integer"),
    listing("limit-negative", "limit=-1", "limit: value should be an integer of at least 0"),
    listing("limit-float", "limit=1.5", "limit: value is not an integer"),
    listing("limit-5000-digits", "limit=" + "9" * 5000, "limit: value is not an integer"),
    listing("since-word", "since=yesterday", "since: invalid ISO 8601 time 'yesterday'"),
    listing("since-empty", "since=", "since: invalid ISO 8601 time ''"),
    listing(
        "since-past-year-9999",
        "since=9999-12-31T23:59:59-23:59",
        "since: '9999-12-31T23:59:59-23:59' is out of range",
    ),
    listing(
        "until-before-year-1",
        "until=0001-01-01T00:00:00%2B23:59",
        "until: '0001-01-01T00:00:00+23:59' is out of range",
    ),
]

JOB_IDS = [
    Case("id-get-unknown", "GET", "jobs/job-nope", None, 400, "no such job job-nope"),
    Case("id-get-nul", "GET", "jobs/%00", None, 400, "no such job \0"),
    Case("id-get-not-utf-8", "GET", "jobs/%ff%fe", None, 400, "no such job"),
    Case("id-get-4000-chars", "GET", "jobs/" + "j" * 4000, None, 400, "no such job jjj"),
    Case("id-kill-surrogate", "DELETE", "jobs/%ed%a0%80", None, 400, "no such job"),
    Case("id-kill-unknown", "DELETE", "jobs/job-nope", None, 400, "no such job job-nope"),
    Case("id-log-unknown", "GET", "jobs/job-nope/log", None, 400, "no such job job-nope"),
    Case("id-kill-no-id", "DELETE", "jobs/", None, 404, ""),
    Case("id-patch-jobs", "PATCH", "jobs", js(START), 405, ""),
    Case("id-put-jobs", "PUT", "jobs", js(START), 405, ""),
    Case("id-delete-all-jobs", "DELETE", "jobs", None, 405, ""),
    Case("id-post-to-a-job", "POST", "jobs/job-nope", js(START), 405, ""),
    Case("id-get-bump", "GET", f"jobs/{JOB}/max_run_time_minutes", None, 405, ""),
]


def project(name: str, body: bytes, says: str, status: int = 400, chunked: bool = False) -> Case:
    return Case(f"flow-project-{name}", "POST", "flow/projects", body, status, says, chunked)


def live_job(name: str, body: bytes, says: str, status: int = 400) -> Case:
    return Case(f"flow-live-job-{name}", "PUT", "flow/live_jobs/replace", body, status, says)


FLOW = [
    project("not-json", b"{", "Invalid flow project: the body is not valid JSON"),
    project(
        "nan",
        b'{"name": NaN, "cluster": "local"}',
        "Invalid flow project: the body is not valid JSON: NaN is not a number",
    ),
    project("nested-100000-deep", DEEP, "Invalid flow project: the body is not valid JSON"),
    project(
        "name-too-long",
        js({**PROJECT, "name": "n" * 1025}),
        "Invalid flow project: name: is longer than 1024 characters",
    ),
    project(
        "cluster-too-long",
        js({**PROJECT, "cluster": "c" * 1025}),
        "Invalid flow project: cluster: is longer than 1024 characters",
    ),
    project(
        "name-surrogate",
        js({**PROJECT, "name": "\ud800"}),
        "Invalid flow project: name: is not valid Unicode text",
    ),
    project("list", js([PROJECT]), "Invalid flow project: the body is not a JSON object"),
    project("unknown-long-key", js({**PROJECT, "k" * 5000: 1}), "k" * 64 + "...: is not allowed"),
    project(
        "two-MiB", js({**PROJECT, "name": "n" * 2 * MiB}), "Invalid flow project: " + TOO_LARGE, 413
    ),
    project(
        "two-MiB-chunked",
        js({**PROJECT, "name": "n" * 2 * MiB}),
        "Invalid flow project: " + TOO_LARGE,
        413,
        chunked=True,
    ),
    live_job(
        "tags-257",
        js({**LIVE_JOB, "tags": ["t"] * 257}),
        "Invalid live job: tags: at most 256 tags are allowed",
    ),
    live_job(
        "tag-too-long",
        js({**LIVE_JOB, "tags": ["t" * 1025]}),
        "Invalid live job: tags: is longer than 1024 characters",
    ),
    live_job(
        "yaml_id-too-long",
        js({**LIVE_JOB, "yaml_id": "y" * 1025}),
        "Invalid live job: yaml_id: is longer than 1024 characters",
    ),
    live_job(
        "multi-string",
        js({**LIVE_JOB, "multi": "no"}),
        "Invalid live job: multi: value should be True or False",
    ),
    live_job(
        "infinity",
        b'{"project_id": "p", "yaml_id": "a", "tags": [], "multi": Infinity}',
        "Invalid live job: the body is not valid JSON: Infinity",
    ),
    live_job("unknown-project", js(LIVE_JOB), "no such flow project projects-x", 404),
    Case(
        "flow-by-name-without-name",
        "GET",
        "flow/projects/by_name?cluster=local",
        None,
        400,
        "name: the query parameter is required",
    ),
    Case(
        "flow-live-jobs-without-project",
        "GET",
        "flow/live_jobs",
        None,
        400,
        "project_id: the query parameter is required",
    ),
    Case("flow-get-unknown-project", "GET", "flow/projects/%ed%a0%80", None, 404, "no such flow"),
    Case("flow-delete-unknown-project", "DELETE", "flow/projects/p-x", None, 404, "no such flow"),
    Case("flow-bakes", "POST", "flow/bakes", js({}), 404, "is not served"),
    Case("flow-patch-projects", "PATCH", "flow/projects", js(PROJECT), 404, "is not served"),
]

CONFIG = [
    Case("config-post-config", "POST", "config", js({}), 405, ""),
    Case("config-put-config", "PUT", "config", js({}), 405, ""),
    Case("config-delete-config", "DELETE", "config", None, 405, ""),
    Case("config-post-ping", "POST", "ping", b"x" * 2 * MiB, 405, ""),
]

CASES = JOB_CREATE + BUMPS + JOB_QUERIES + JOB_IDS + FLOW + CONFIG


@dataclass(frozen=True)
class Served:
    platform: LocalPlatform
    http: aiohttp.ClientSession
    job_id: str

    def url(self, path: str) -> URL:
        path = path.replace(JOB, self.job_id)
        return URL(f"{self.platform.api_url}/{path}", encoded=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    settings = platform_settings(tmp_path_factory.mktemp("malformed") / "platform")
    headers = {"Authorization": f"Bearer {settings.token}"}
    async with LocalPlatform(settings) as platform, aiohttp.ClientSession(headers=headers) as http:
        # A job whose life span the bump cases try to change: live throughout, its 60
        # "minutes" (seconds here) outlast the table.
        body = {**START, "command": "sleep 600", "max_run_time_minutes": 60}
        async with http.post(f"{platform.api_url}/jobs?from_preset", json=body) as resp:
            assert resp.status == 202, await resp.text()
            job_id = (await resp.json())["id"]
        yield Served(platform, http, job_id)


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start_at in range(0, len(data), size):
        yield data[start_at : start_at + size]


async def send(served: Served, case: Case) -> tuple[int, str | None]:
    """The status, and the error message of a JSON error answer."""
    data: Any = case.body
    if case.chunked and case.body is not None:
        data = chunks(case.body)
    headers = {"Content-Type": "application/json"} if case.body is not None else {}
    async with served.http.request(
        case.method, served.url(case.path), data=data, headers=headers
    ) as resp:
        if resp.content_type != "application/json":
            return resp.status, None
        body = await resp.json()
        return resp.status, body.get("error") if isinstance(body, dict) else None


async def still_serving(served: Served) -> None:
    async with served.http.get(served.url("jobs?limit=1")) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_malformed_request_is_refused(served: Served, case: Case) -> None:
    status, error = await send(served, case)
    assert status == case.status, error
    if case.says:
        assert error is not None
        assert case.says in error
    await still_serving(served)


async def test_the_table_is_large() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


def peak_memory() -> int:
    """This process's peak resident memory (VmHWM), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


async def test_a_300_mib_body_is_refused_without_being_read(served: Served) -> None:
    # Reset the peak to what is resident now, where the kernel allows it.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    before = peak_memory()
    block = b" " * MiB  # leading white space: valid JSON, however much of it comes

    async def body() -> AsyncIterator[bytes]:
        for _ in range(300):
            yield block
        yield js(START)

    headers = {"Content-Type": "application/json"}
    async with served.http.post(
        served.url("jobs?from_preset"), data=body(), headers=headers
    ) as resp:
        assert resp.status == 413
        assert TOO_LARGE in (await resp.json())["error"]
    # The platform runs in this process: had it read the body, the peak would show it.
    assert peak_memory() - before < 64 * MiB
    await still_serving(served)


async def raw_request(served: Served, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.platform.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/jobs", b"401"), ("/api/v1/flow/projects", b"401"), ("/api/v1/config", b"200")],
)
@pytest.mark.parametrize(
    "header",
    [b"Authorization: Bearer \xff\xfe", b"Sec-WebSocket-Protocol: bearer.apolo.us-\xff"],
    ids=["bearer", "websocket-protocol"],
)
async def test_a_token_that_is_not_utf8_is_just_wrong(
    served: Served, path: str, status: bytes, header: bytes
) -> None:
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
    answer = await raw_request(served, head + header + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    if path == "/api/v1/config":
        assert b'"authorized": false' in answer
    await still_serving(served)


async def test_a_refused_bump_leaves_the_life_span_in_force(tmp_path: Path) -> None:
    # A life span of one "minute", a second here: a bump the platform refused must not have
    # stopped it from ending the job.
    settings = platform_settings(tmp_path / "platform")
    headers = {"Authorization": f"Bearer {settings.token}"}
    async with LocalPlatform(settings) as platform, aiohttp.ClientSession(headers=headers) as http:
        body = {**START, "command": "sleep 30", "max_run_time_minutes": 1}
        async with http.post(f"{platform.api_url}/jobs?from_preset", json=body) as resp:
            job_id = (await resp.json())["id"]
        bump_url = f"{platform.api_url}/jobs/{job_id}/max_run_time_minutes"
        async with http.put(bump_url, json={"additional_max_run_time_minutes": 10**400}) as resp:
            assert resp.status == 400
        for _ in range(200):
            async with http.get(f"{platform.api_url}/jobs/{job_id}") as resp:
                job = await resp.json()
            if job["status"] not in ("pending", "running"):
                break
            await asyncio.sleep(0.05)
        assert (job["status"], job["history"]["reason"]) == ("cancelled", "LifeSpanEnded")
        assert job["max_run_time_minutes"] == 1


async def test_a_good_job_is_still_accepted(served: Served) -> None:
    async with served.http.post(served.url("jobs?from_preset"), json=START) as resp:
        assert resp.status == 202, await resp.text()
