"""Job requests: the checks the real platform makes before it accepts a job."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from .errors import JobRequestError
from .records import Job, Volume, utcnow
from .settings import Settings

NAME_RE = re.compile(r"^[a-z](?:-?[a-z0-9])*$")
TAG_RE = re.compile(r"^\S+$")
MAX_TAGS = 16
MAX_TAG_LENGTH = 256
RESTART_POLICIES = ("never", "on-failure", "always")
PRIORITIES = ("low", "normal", "high")

# Keys the SDK sends beside the container fields; anything else is rejected, as upstream.
JOB_KEYS = {
    "name", "description", "tags", "preset_name", "max_run_time_minutes", "schedule_timeout",
    "restart_policy", "priority", "privileged", "pass_config", "wait_for_jobs_quota",
    "cluster_name", "org_name", "project_name", "scheduler_enabled", "energy_schedule_name",
    "is_preemptible", "is_preemptible_node_required",
}  # fmt: skip
CONTAINER_KEYS = {
    "image", "command", "entrypoint", "working_dir", "env", "volumes", "http", "tty",
    "resources", "secret_env", "secret_volumes", "disk_volumes",
}  # fmt: skip
RESOURCE_KEYS = {
    "cpu", "memory", "memory_mb", "shm", "nvidia_gpu", "amd_gpu", "intel_gpu",
    "nvidia_gpu_model", "amd_gpu_model", "intel_gpu_model", "tpu",
}  # fmt: skip


def _fail(key: str, message: str) -> JobRequestError:
    return JobRequestError(f"Invalid job request: {key}: {message}")


def _check_unknown(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(where + unknown[0], "is not allowed key")


def _str(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(key, "is required")
        return None
    if not isinstance(value, str):
        raise _fail(key, "value is not a string")
    return value


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _fail(key, "value should be True or False")
    return value


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    if not 3 <= len(value) <= 40:
        raise _fail("name", "length should be between 3 and 40 characters")
    if not NAME_RE.fullmatch(value):
        raise _fail("name", f"does not match pattern {NAME_RE.pattern}")
    if value.startswith("job-"):
        raise _fail("name", "must not start with 'job-'")
    return value


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _fail("tags", "value is not a list of strings")
    if len(value) > MAX_TAGS:
        raise _fail("tags", f"list length is greater than {MAX_TAGS}")
    for tag in value:
        if not tag or len(tag) > MAX_TAG_LENGTH or not TAG_RE.fullmatch(tag):
            raise _fail("tags", f"{tag!r} is not a valid tag (1-{MAX_TAG_LENGTH} chars, no spaces)")
    return sorted(set(value))


def _env(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail("env", "value is not a dict")
    for key, item in value.items():
        if not isinstance(item, str):
            raise _fail(f"env.{key}", "value is not a string")
    return dict(value)


def _volumes(value: Any) -> list[Volume]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail("volumes", "value is not a list")
    volumes = []
    for index, item in enumerate(value):
        where = f"volumes[{index}]"
        if not isinstance(item, dict):
            raise _fail(where, "value is not a dict")
        _check_unknown(item, {"src_storage_uri", "dst_path", "read_only"}, where + ".")
        src = _str(item, "src_storage_uri", required=True)
        dst = _str(item, "dst_path", required=True)
        assert src is not None
        assert dst is not None
        if not src.startswith("storage://"):
            raise _fail(where + ".src_storage_uri", "must be a storage:// URI")
        if not dst.startswith("/"):
            raise _fail(where + ".dst_path", "must be an absolute path")
        volumes.append(Volume(src, dst, _bool(item, "read_only")))
    return volumes


def _http(value: Any) -> tuple[int | None, bool]:
    if value is None:
        return None, False
    if not isinstance(value, dict) or not isinstance(value.get("port"), int):
        raise _fail("http.port", "value is not an integer")
    port = value["port"]
    if not 1 <= port <= 65535:
        raise _fail("http.port", "must be between 1 and 65535")
    return port, _bool(value, "requires_auth")


def _positive_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(key, "value should be an integer greater than or equal to 1")
    return value


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise _fail(key, f"value must be one of {', '.join(allowed)}")
    return str(value)


def _restart_policy(data: dict[str, Any]) -> str:
    policy = _choice(data, "restart_policy", RESTART_POLICIES, "never")
    if policy != "never":
        # Restarting is the cluster's job; a local process runs once.
        raise _fail("restart_policy", "only 'never' is available on the local platform")
    return policy


def _pass_config(data: dict[str, Any]) -> bool:
    if _bool(data, "pass_config"):
        # The real platform hands the job a login of its owner; a sandboxed local process
        # gets no platform credentials, so accepting the flag would silently drop it.
        raise _fail(
            "pass_config", "passing the platform config is not available on the local platform"
        )
    return False


@dataclass(frozen=True)
class _Size:
    preset_name: str | None
    cpu: float
    memory: int


def parse_job_request(body: Any, *, from_preset: bool, settings: Settings, owner: str) -> Job:
    """Turn a POST /jobs body into a pending Job, or raise JobRequestError.

    The parts are checked in a fixed order: a request with several faults is always refused
    for the same one.
    """
    if not isinstance(body, dict):
        raise JobRequestError("Invalid job request: the body must be a JSON object")
    container = _container(body, from_preset=from_preset)
    resources = _resources(container)
    size = _size(body, resources, from_preset=from_preset, settings=settings)
    _check_placement(body, settings)
    return _job(body, container, resources, size, settings=settings, owner=owner)


def _container(body: dict[str, Any], *, from_preset: bool) -> dict[str, Any]:
    """The container's fields, wherever the request puts them."""
    container: dict[str, Any]
    if from_preset:
        # jobs.start sends the container fields flat, beside the job fields.
        _check_unknown(body, JOB_KEYS | CONTAINER_KEYS, "")
        container = {k: v for k, v in body.items() if k in CONTAINER_KEYS}
    else:
        _check_unknown(body, JOB_KEYS | {"container"}, "")
        nested = body.get("container")
        if not isinstance(nested, dict):
            raise _fail("container", "is required")
        _check_unknown(nested, CONTAINER_KEYS, "container.")
        container = nested
    for key in ("secret_env", "secret_volumes", "disk_volumes"):
        if container.get(key):
            raise _fail(key, "secrets and disks are not available on the local platform")
    return container


def _resources(container: dict[str, Any]) -> dict[str, Any]:
    resources = container.get("resources") or {}
    if not isinstance(resources, dict):
        raise _fail("resources", "value is not a dict")
    _check_unknown(resources, RESOURCE_KEYS, "resources.")
    return resources


def _size(
    body: dict[str, Any], resources: dict[str, Any], *, from_preset: bool, settings: Settings
) -> _Size:
    """CPU and memory: a named preset's, which wins over any the request also gives, or
    else the request's own."""
    preset_name = _str(body, "preset_name")
    if from_preset:
        if preset_name is None:
            raise _fail("preset_name", "is required")
        if set(resources) - {"shm"}:
            raise _fail("resources", "only shm can be set with a preset")
    if preset_name is not None:
        preset = settings.preset(preset_name)
        if preset is None:
            raise JobRequestError("Preset was not found")
        size = _Size(preset_name, float(preset.cpu), int(preset.memory))
    else:
        cpu, memory = _explicit_size(resources)
        size = _Size(None, cpu, memory)
    if any("gpu" in k or k == "tpu" for k in resources):
        raise _fail("resources", "GPUs and TPUs are not available on the local platform")
    return size


def _explicit_size(resources: dict[str, Any]) -> tuple[float, int]:
    cpu, memory = resources.get("cpu"), resources.get("memory")
    if memory is None and "memory_mb" in resources:
        memory = int(resources["memory_mb"]) * 2**20
    if not isinstance(cpu, (int, float)) or cpu <= 0:
        raise _fail("resources.cpu", "value should be a number greater than 0")
    if not isinstance(memory, int) or memory <= 0:
        raise _fail("resources.memory", "value should be an integer greater than 0")
    return float(cpu), int(memory)


def _check_placement(body: dict[str, Any], settings: Settings) -> None:
    """One cluster, org and project are served: a job asked for elsewhere is refused, not
    quietly run here. NO_ORG, the SDK's name for no org, is taken as this one."""
    for key, expected in (("cluster_name", settings.cluster), ("org_name", settings.org),
                          ("project_name", settings.project)):  # fmt: skip
        given = body.get(key)
        no_org = key == "org_name" and given == "NO_ORG"
        if given is not None and given != expected and not no_org:
            raise JobRequestError(f"{key} {given!r} is not served here; use {expected!r}")


def _image(container: dict[str, Any]) -> str:
    image = _str(container, "image", required=True)
    assert image is not None
    if not image.strip():
        raise _fail("image", "must not be empty")
    return image


def _schedule_timeout(body: dict[str, Any]) -> float | None:
    value = body.get("schedule_timeout")
    if value is not None and not isinstance(value, (int, float)):
        raise _fail("schedule_timeout", "value is not a number")
    return value


def _job(
    body: dict[str, Any],
    container: dict[str, Any],
    resources: dict[str, Any],
    size: _Size,
    *,
    settings: Settings,
    owner: str,
) -> Job:
    """The job itself from the remaining fields, each checked as it is read."""
    image = _image(container)
    http_port, http_auth = _http(container.get("http"))
    schedule_timeout = _schedule_timeout(body)
    return Job(
        id=f"job-{uuid.uuid4()}",
        owner=owner,
        cluster_name=settings.cluster,
        org_name=settings.org,
        project_name=settings.project,
        image=image,
        cpu=size.cpu,
        memory=size.memory,
        created_at=utcnow(),
        preset_name=size.preset_name,
        name=_name(_str(body, "name")),
        description=_str(body, "description"),
        tags=_tags(body.get("tags")),
        command=_str(container, "command"),
        entrypoint=_str(container, "entrypoint"),
        working_dir=_str(container, "working_dir"),
        env=_env(container.get("env")),
        volumes=_volumes(container.get("volumes")),
        http_port=http_port,
        http_requires_auth=http_auth,
        tty=_bool(container, "tty"),
        shm=bool(resources.get("shm", False)),
        max_run_time_minutes=_positive_int(body, "max_run_time_minutes"),
        schedule_timeout=schedule_timeout,
        restart_policy=_restart_policy(body),
        priority=_choice(body, "priority", PRIORITIES, "normal"),
        privileged=_bool(body, "privileged"),
        pass_config=_pass_config(body),
        scheduler_enabled=_bool(body, "scheduler_enabled"),
    )
