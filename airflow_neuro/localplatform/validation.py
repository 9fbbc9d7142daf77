"""Job requests: the checks the real platform makes before it accepts a job."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from .errors import JobRequestError, shown
from .records import Job, Volume, utcnow
from .settings import Settings

NAME_RE = re.compile(r"^[a-z](?:-?[a-z0-9])*$")
TAG_RE = re.compile(r"^\S+$")
MAX_TAGS = 16
MAX_TAG_LENGTH = 256
RESTART_POLICIES = ("never", "on-failure", "always")
PRIORITIES = ("low", "normal", "high")

# What one job request may carry. Far beyond any real job, these keep a request from
# filling every job list clients read, and every number finite and exact.
MAX_DESCRIPTION_LENGTH = 16_384
MAX_IMAGE_LENGTH = 1024
MAX_NAME_LENGTH = 256  # preset and energy schedule names
# Linux's limit on one argument or environment string (MAX_ARG_STRLEN): a longer command
# word or variable could not reach the process anyway.
MAX_ARGUMENT_LENGTH = 131_072
MAX_PATH_LENGTH = 4096  # Linux's PATH_MAX
MAX_ENV_VARS = 1024
MAX_ENV_NAME_LENGTH = 1024
MAX_VOLUMES = 128
MAX_CPU = 1024
# Bytes, 1 PiB: below 2**53, so that a client reading JSON numbers as doubles reads it exactly.
MAX_MEMORY = 2**50
MAX_MEMORY_MB = MAX_MEMORY // 2**20
# 100 years. A bump may not take a life span past it either: life-span deadlines stay
# finite times on the event loop's clock.
MAX_LIFE_SPAN_MINUTES = 100 * 365 * 24 * 60
# Seconds, the real platform's bounds.
MIN_SCHEDULE_TIMEOUT = 1
MAX_SCHEDULE_TIMEOUT = 30 * 24 * 3600

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
        raise _fail(where + shown(unknown[0]), "is not allowed key")


def _encodable(text: str) -> bool:
    """JSON may carry lone surrogates ("\\ud800"), which no process or file name can take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(value: str, where: str, max_length: int, *, process: bool) -> None:
    """``process``: the text reaches the job's process (argv, environment, paths), where
    a NUL character cannot go."""
    if len(value) > max_length:
        raise _fail(where, f"is longer than {max_length} characters, the most allowed")
    if process and "\0" in value:
        raise _fail(where, "must not contain NUL characters")
    if not _encodable(value):
        raise _fail(where, "is not valid Unicode text")


def _text(
    data: dict[str, Any],
    key: str,
    *,
    max_length: int,
    at: str = "",
    required: bool = False,
    process: bool = False,
) -> str | None:
    """A string field; ``at`` is where its object sits in the request (``container.``)."""
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(at + key, "is required")
        return None
    if not isinstance(value, str):
        raise _fail(at + key, "value is not a string")
    _check_text(value, at + key, max_length, process=process)
    return value


def _bool(data: dict[str, Any], key: str, at: str = "") -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _fail(at + key, "value should be True or False")
    return value


def _is_int(value: Any) -> bool:
    # JSON true and false are Python bools, which are ints too.
    return isinstance(value, int) and not isinstance(value, bool)


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
            raise _fail(
                "tags",
                f"{shown(tag)!r} is not a valid tag (1-{MAX_TAG_LENGTH} chars, no spaces)",
            )
    return sorted(set(value))


def _env(value: Any, at: str) -> dict[str, str]:
    where = at + "env"
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, "value is not a dict")
    if len(value) > MAX_ENV_VARS:
        raise _fail(where, f"has more than {MAX_ENV_VARS} variables, the most allowed")
    for key, item in value.items():
        if (
            not 0 < len(key) <= MAX_ENV_NAME_LENGTH
            or "=" in key
            or "\0" in key
            or not _encodable(key)
        ):
            raise _fail(
                where,
                f"{shown(key)!r} is not a variable name"
                f" (1-{MAX_ENV_NAME_LENGTH} characters of Unicode text, no '=' or NUL)",
            )
        if not isinstance(item, str):
            raise _fail(f"{where}.{shown(key)}", "value is not a string")
        _check_text(item, f"{where}.{shown(key)}", MAX_ARGUMENT_LENGTH, process=True)
    return dict(value)


def _volumes(value: Any, at: str) -> list[Volume]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(at + "volumes", "value is not a list")
    if len(value) > MAX_VOLUMES:
        raise _fail(at + "volumes", f"has more than {MAX_VOLUMES} volumes, the most allowed")
    volumes = []
    for index, item in enumerate(value):
        where = f"{at}volumes[{index}]"
        if not isinstance(item, dict):
            raise _fail(where, "value is not a dict")
        _check_unknown(item, {"src_storage_uri", "dst_path", "read_only"}, where + ".")
        src = _text(item, "src_storage_uri", at=where + ".", required=True,
                    max_length=MAX_PATH_LENGTH, process=True)  # fmt: skip
        dst = _text(item, "dst_path", at=where + ".", required=True,
                    max_length=MAX_PATH_LENGTH, process=True)  # fmt: skip
        assert src is not None
        assert dst is not None
        if not src.startswith("storage://"):
            raise _fail(where + ".src_storage_uri", "must be a storage:// URI")
        if not dst.startswith("/"):
            raise _fail(where + ".dst_path", "must be an absolute path")
        volumes.append(Volume(src, dst, _bool(item, "read_only", where + ".")))
    return volumes


def _http(value: Any, at: str) -> tuple[int | None, bool]:
    if value is None:
        return None, False
    where = at + "http.port"
    if not isinstance(value, dict) or not _is_int(value.get("port")):
        raise _fail(where, "value should be an integer between 1 and 65535")
    port = value["port"]
    if not 1 <= port <= 65535:
        raise _fail(where, "value should be an integer between 1 and 65535")
    return port, _bool(value, "requires_auth", at + "http.")


def _life_span(data: dict[str, Any]) -> int | None:
    value = data.get("max_run_time_minutes")
    if value is None:
        return None
    if not _is_int(value) or not 1 <= value <= MAX_LIFE_SPAN_MINUTES:
        raise _fail(
            "max_run_time_minutes",
            f"value should be an integer between 1 and {MAX_LIFE_SPAN_MINUTES} (100 years)",
        )
    return int(value)


def parse_life_span_bump(body: Any, current: int | None) -> int:
    """The minutes a ``PUT /jobs/{id}/max_run_time_minutes`` body adds: a whole number, at
    least one, that keeps the job's life span (``current`` minutes; None: it has none)
    within the maximum."""
    key = "additional_max_run_time_minutes"
    if not isinstance(body, dict):
        raise JobRequestError("Invalid job request: the body must be a JSON object")
    _check_unknown(body, {key}, "")
    room = MAX_LIFE_SPAN_MINUTES - (current or 0)
    value = body.get(key)
    if value is None:
        raise _fail(key, "is required")
    if not _is_int(value) or value < 1:
        raise _fail(key, f"value should be an integer between 1 and {room}")
    if value > room:
        raise _fail(
            key,
            f"value should be at most {room}: a life span is at most {MAX_LIFE_SPAN_MINUTES}"
            f" minutes (100 years) and this job's is {current or 0}",
        )
    return int(value)


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


def _check_ignored(body: dict[str, Any]) -> None:
    """Fields the SDK may send that mean nothing on one machine: still of the right type."""
    for key in ("wait_for_jobs_quota", "is_preemptible", "is_preemptible_node_required"):
        _bool(body, key)
    _text(body, "energy_schedule_name", max_length=MAX_NAME_LENGTH)


@dataclass(frozen=True)
class _Size:
    preset_name: str | None
    cpu: float
    memory: int


@dataclass(frozen=True)
class _Container:
    fields: dict[str, Any]
    at: str  # where the fields sit in the request: "container." or, flat, ""


def parse_job_request(body: Any, *, from_preset: bool, settings: Settings, owner: str) -> Job:
    """Turn a POST /jobs body into a pending Job, or raise JobRequestError.

    The parts are checked in a fixed order: a request with several faults is always refused
    for the same one.
    """
    if not isinstance(body, dict):
        raise JobRequestError("Invalid job request: the body must be a JSON object")
    container = _container(body, from_preset=from_preset)
    resources = _resources(container)
    size = _size(body, container, resources, from_preset=from_preset, settings=settings)
    _check_placement(body, settings)
    _check_ignored(body)
    return _job(body, container, resources, size, settings=settings, owner=owner)


def _container(body: dict[str, Any], *, from_preset: bool) -> _Container:
    """The container's fields, wherever the request puts them."""
    container: _Container
    if from_preset:
        # jobs.start sends the container fields flat, beside the job fields.
        _check_unknown(body, JOB_KEYS | CONTAINER_KEYS, "")
        container = _Container({k: v for k, v in body.items() if k in CONTAINER_KEYS}, "")
    else:
        _check_unknown(body, JOB_KEYS | {"container"}, "")
        nested = body.get("container")
        if not isinstance(nested, dict):
            raise _fail("container", "is required")
        _check_unknown(nested, CONTAINER_KEYS, "container.")
        container = _Container(nested, "container.")
    for key in ("secret_env", "secret_volumes", "disk_volumes"):
        if container.fields.get(key):
            raise _fail(
                container.at + key, "secrets and disks are not available on the local platform"
            )
    return container


def _resources(container: _Container) -> dict[str, Any]:
    resources = container.fields.get("resources")
    if resources is None:
        return {}
    if not isinstance(resources, dict):
        raise _fail(container.at + "resources", "value is not a dict")
    _check_unknown(resources, RESOURCE_KEYS, container.at + "resources.")
    return resources


def _size(
    body: dict[str, Any],
    container: _Container,
    resources: dict[str, Any],
    *,
    from_preset: bool,
    settings: Settings,
) -> _Size:
    """CPU and memory: a named preset's, which wins over any the request also gives, or
    else the request's own."""
    at = container.at + "resources"
    preset_name = _text(body, "preset_name", max_length=MAX_NAME_LENGTH)
    if from_preset:
        if preset_name is None:
            raise _fail("preset_name", "is required")
        if set(resources) - {"shm"}:
            raise _fail(at, "only shm can be set with a preset")
    if preset_name is not None:
        preset = settings.preset(preset_name)
        if preset is None:
            raise JobRequestError("Preset was not found")
        size = _Size(preset_name, float(preset.cpu), int(preset.memory))
    else:
        cpu, memory = _explicit_size(resources, at + ".")
        size = _Size(None, cpu, memory)
    if any("gpu" in k or k == "tpu" for k in resources):
        raise _fail(at, "GPUs and TPUs are not available on the local platform")
    return size


def _explicit_size(resources: dict[str, Any], at: str) -> tuple[float, int]:
    cpu = resources.get("cpu")
    if (
        isinstance(cpu, bool)
        or not isinstance(cpu, (int, float))
        or not 0 < cpu <= MAX_CPU  # NaN fails this too
    ):
        raise _fail(at + "cpu", f"value should be a number greater than 0 and at most {MAX_CPU}")
    if "memory" in resources:
        memory = resources["memory"]
        if not _is_int(memory) or not 0 < memory <= MAX_MEMORY:
            raise _fail(
                at + "memory", f"value should be an integer between 1 and {MAX_MEMORY} (bytes)"
            )
    elif "memory_mb" in resources:
        memory_mb = resources["memory_mb"]
        if not _is_int(memory_mb) or not 0 < memory_mb <= MAX_MEMORY_MB:
            raise _fail(
                at + "memory_mb",
                f"value should be an integer between 1 and {MAX_MEMORY_MB} (MiB)",
            )
        memory = memory_mb * 2**20
    else:
        raise _fail(at + "memory", "is required (bytes; or memory_mb, MiB)")
    return float(cpu), int(memory)


def _check_placement(body: dict[str, Any], settings: Settings) -> None:
    """One cluster, org and project are served: a job asked for elsewhere is refused, not
    quietly run here. NO_ORG, the SDK's name for no org, is taken as this one."""
    for key, expected in (("cluster_name", settings.cluster), ("org_name", settings.org),
                          ("project_name", settings.project)):  # fmt: skip
        given = body.get(key)
        if given is not None and not isinstance(given, str):
            raise _fail(key, "value is not a string")
        no_org = key == "org_name" and given == "NO_ORG"
        if given is not None and given != expected and not no_org:
            raise JobRequestError(f"{key} {shown(given)!r} is not served here; use {expected!r}")


def _image(container: _Container) -> str:
    image = _text(container.fields, "image", at=container.at, required=True,
                  max_length=MAX_IMAGE_LENGTH, process=True)  # fmt: skip
    assert image is not None
    if not image.strip():
        raise _fail(container.at + "image", "must not be empty")
    return image


def _working_dir(container: _Container) -> str | None:
    where = container.at + "working_dir"
    path = _text(container.fields, "working_dir", at=container.at, max_length=MAX_PATH_LENGTH,
                 process=True)  # fmt: skip
    if path is not None and not path.startswith("/"):
        raise _fail(where, "must be an absolute path")
    return path


def _schedule_timeout(body: dict[str, Any]) -> float | None:
    value = body.get("schedule_timeout")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not MIN_SCHEDULE_TIMEOUT <= value < MAX_SCHEDULE_TIMEOUT  # NaN fails this too
    ):
        raise _fail(
            "schedule_timeout",
            f"value should be a number of seconds, at least {MIN_SCHEDULE_TIMEOUT} and"
            f" less than {MAX_SCHEDULE_TIMEOUT} (30 days)",
        )
    return value


def _job(
    body: dict[str, Any],
    container: _Container,
    resources: dict[str, Any],
    size: _Size,
    *,
    settings: Settings,
    owner: str,
) -> Job:
    """The job itself from the remaining fields, each checked as it is read."""
    fields, at = container.fields, container.at
    image = _image(container)
    http_port, http_auth = _http(fields.get("http"), at)
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
        # Longer than NAME_RE allows, but _name says what is wrong with a name.
        name=_name(_text(body, "name", max_length=MAX_NAME_LENGTH)),
        description=_text(body, "description", max_length=MAX_DESCRIPTION_LENGTH),
        tags=_tags(body.get("tags")),
        command=_text(fields, "command", at=at, max_length=MAX_ARGUMENT_LENGTH, process=True),
        entrypoint=_text(fields, "entrypoint", at=at, max_length=MAX_ARGUMENT_LENGTH, process=True),
        working_dir=_working_dir(container),
        env=_env(fields.get("env"), at),
        volumes=_volumes(fields.get("volumes"), at),
        http_port=http_port,
        http_requires_auth=http_auth,
        tty=_bool(fields, "tty", at),
        shm=_bool(resources, "shm", at + "resources."),
        max_run_time_minutes=_life_span(body),
        schedule_timeout=schedule_timeout,
        restart_policy=_restart_policy(body),
        priority=_choice(body, "priority", PRIORITIES, "normal"),
        privileged=_bool(body, "privileged"),
        pass_config=_pass_config(body),
        scheduler_enabled=_bool(body, "scheduler_enabled"),
    )
