"""Operator arguments -> a platform job: checked first, then sent with the SDK.

Every check that can fail runs before anything is sent, and names the argument at fault,
so a bad DAG never leaves a half-made job behind.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any
from urllib.parse import unquote

import apolo_sdk

from airflow_neuro.arguments import check_flags, check_number
from airflow_neuro.exceptions import JobArgumentError

NAME_RE = re.compile(r"^[a-z](?:-?[a-z0-9])*$")
MAX_TAGS = 16
MAX_TAG_LENGTH = 256
VOLUME_MODES = ("ro", "rw")
RESTART_POLICIES = ("never", "on-failure", "always")
# The platform's limits, so that a job it would refuse is refused before it is sent.
MAX_DESCRIPTION_LENGTH = 16_384
# Linux's limit on one argument or environment string: a longer one cannot be exec'd.
MAX_ARGUMENT_LENGTH = 131_072
MAX_ENV_VARS = 1024
MAX_ENV_NAME_LENGTH = 1024
MAX_VOLUMES = 128
MIN_LIFESPAN = 60.0  # the platform counts whole minutes
MAX_LIFESPAN = 100 * 365 * 24 * 3600.0
MIN_SCHEDULE_TIMEOUT = 1.0
MAX_SCHEDULE_TIMEOUT = 30 * 24 * 3600.0


@dataclass(frozen=True)
class JobRequest:
    """A job as the operator describes it (argument names as in the operator)."""

    job_command: str | None  # None: the image's own command
    job_image: str
    job_volumes: Sequence[str | apolo_sdk.Volume] = ()
    job_name: str | None = None
    job_resources_preset: str | None = None
    job_resources: apolo_sdk.Resources | None = None
    job_extshm: bool = True
    job_tags: Sequence[str] = ()
    job_description: str | None = None
    job_lifespan: float | None = None
    job_environ: Mapping[str, str] = field(default_factory=dict)
    job_entrypoint: str | None = None
    job_http_port: int | str | None = None
    job_http_auth: bool = True
    job_tty: bool = False
    job_working_dir: str | None = None
    job_schedule_timeout: float | None = None
    job_restart_policy: str = "never"
    job_pass_config: bool = False

    def fingerprint(self) -> str:
        """A short hash of everything that shapes the job, to tell a redeploy of the same
        spec from a changed one (the tags that identify a task are added later, not here)."""
        # Fields at their defaults are left out, so that a field added in a later version
        # does not change the fingerprint of every running service.
        spec = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.default is MISSING or getattr(self, f.name) != f.default
        }
        text = json.dumps(spec, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- checks that need no platform -----------------------------------------------------
    def check(self, identity_tags: Sequence[str] = ()) -> None:
        _text("job_command", self.job_command, required=self.job_command is not None,
              max_length=MAX_ARGUMENT_LENGTH, process=True)  # fmt: skip
        _text("job_image", self.job_image, required=True)
        _text("job_entrypoint", self.job_entrypoint, max_length=MAX_ARGUMENT_LENGTH, process=True)
        _text("job_description", self.job_description, max_length=MAX_DESCRIPTION_LENGTH)
        _text("job_working_dir", self.job_working_dir, process=True)
        if self.job_working_dir is not None and not self.job_working_dir.startswith("/"):
            raise JobArgumentError(
                "job_working_dir", f"must be an absolute path, got {self.job_working_dir!r}"
            )
        self.check_fixed()
        if self.job_name is not None:
            check_name(self.job_name)
        _text("job_resources_preset", self.job_resources_preset)
        check_tags("job_tags", self.job_tags, reserved=len(identity_tags))
        self.http_port()
        self.environ()
        check_volumes("job_volumes", self.job_volumes)

    def check_fixed(self) -> None:
        """The checks of arguments that are not templated: an operator runs them when it
        is made, so that such a mistake fails the DAG file, not a run."""
        check_flags([
            ("job_extshm", self.job_extshm),
            ("job_http_auth", self.job_http_auth),
            ("job_tty", self.job_tty),
            ("job_pass_config", self.job_pass_config),
        ])  # fmt: skip
        if self.job_lifespan is not None:
            check_number("job_lifespan", self.job_lifespan, minimum=MIN_LIFESPAN,
                         maximum=MAX_LIFESPAN, inclusive=True)  # fmt: skip
        if self.job_schedule_timeout is not None:
            check_number("job_schedule_timeout", self.job_schedule_timeout,
                         minimum=MIN_SCHEDULE_TIMEOUT, maximum=MAX_SCHEDULE_TIMEOUT,
                         inclusive=True, below_maximum=True)  # fmt: skip
        if self.job_restart_policy not in RESTART_POLICIES:
            raise JobArgumentError(
                "job_restart_policy",
                f"must be one of {', '.join(RESTART_POLICIES)}, got {self.job_restart_policy!r}",
            )
        if self.job_resources_preset is not None and self.job_resources is not None:
            raise JobArgumentError(
                "job_resources_preset",
                "give a preset or job_resources, not both (neither: the cluster's default preset)",
            )
        if self.job_resources is not None and not isinstance(
            self.job_resources, apolo_sdk.Resources
        ):
            raise JobArgumentError(
                "job_resources", f"must be an apolo_sdk.Resources, got {self.job_resources!r}"
            )

    def http_port(self) -> int | None:
        port = self.job_http_port
        if port is None or port == "":
            return None
        try:
            number = int(str(port).strip())
        except ValueError:
            raise JobArgumentError(
                "job_http_port", f"must be a port number, got {port!r}"
            ) from None
        if not 1 <= number <= 65535:
            raise JobArgumentError("job_http_port", f"must be between 1 and 65535, got {number}")
        return number

    def environ(self) -> dict[str, str]:
        return check_environ("job_environ", self.job_environ)

    # -- checks against the cluster, then the request ------------------------------------
    def resolve(self, client: apolo_sdk.Client, identity_tags: Sequence[str] = ()) -> PreparedJob:
        """Everything checked, including against the cluster's presets; nothing sent yet."""
        self.check(identity_tags)
        try:
            image = client.parse.remote_image(self.job_image)
        except ValueError as e:
            raise JobArgumentError("job_image", str(e)) from None
        volumes = []
        for index, volume in enumerate(self.job_volumes):
            if isinstance(volume, str):
                try:
                    volume = client.parse.volume(volume)
                except ValueError as e:
                    raise JobArgumentError(f"job_volumes[{index}]", str(e)) from None
            volumes.append(volume)
        presets = client.config.presets
        preset = self.job_resources_preset
        if self.job_resources is None:
            if preset is None:
                if not presets:
                    raise JobArgumentError("job_resources_preset", "the cluster has no presets")
                preset = next(iter(presets))  # the cluster's default, as the CLI picks it
            elif preset not in presets:
                raise JobArgumentError(
                    "job_resources_preset",
                    f"unknown preset {preset!r}; the cluster has {', '.join(sorted(presets))}",
                )
        port = self.http_port()
        tags = sorted(set(self.job_tags) | set(identity_tags))
        return PreparedJob(
            image=image,
            preset=preset if self.job_resources is None else None,
            resources=self.job_resources,
            command=self.job_command,
            entrypoint=self.job_entrypoint or None,
            env=self.environ(),
            volumes=volumes,
            http=apolo_sdk.HTTPPort(port, self.job_http_auth) if port is not None else None,
            tty=self.job_tty,
            shm=self.job_extshm,
            name=self.job_name,
            tags=tags,
            description=self.job_description,
            life_span=self.job_lifespan,
            working_dir=self.job_working_dir,
            schedule_timeout=self.job_schedule_timeout,
            restart_policy=apolo_sdk.JobRestartPolicy(self.job_restart_policy),
            pass_config=self.job_pass_config,
        )


@dataclass(frozen=True)
class PreparedJob:
    image: apolo_sdk.RemoteImage
    preset: str | None
    resources: apolo_sdk.Resources | None
    command: str | None
    entrypoint: str | None
    env: dict[str, str]
    volumes: list[apolo_sdk.Volume]
    http: apolo_sdk.HTTPPort | None
    tty: bool
    shm: bool
    name: str | None
    tags: list[str]
    description: str | None
    life_span: float | None
    working_dir: str | None = None
    schedule_timeout: float | None = None
    restart_policy: apolo_sdk.JobRestartPolicy = apolo_sdk.JobRestartPolicy.NEVER
    pass_config: bool = False

    async def submit(self, client: apolo_sdk.Client) -> apolo_sdk.JobDescription:
        job: dict[str, Any] = {
            "name": self.name,
            "tags": self.tags,
            "description": self.description,
            "life_span": self.life_span,
            "schedule_timeout": self.schedule_timeout,
            "restart_policy": self.restart_policy,
            "pass_config": self.pass_config,
        }
        # The same container fields go flat to jobs.start or into a Container for jobs.run.
        container: dict[str, Any] = {
            "image": self.image,
            "command": self.command,
            "entrypoint": self.entrypoint,
            "working_dir": self.working_dir,
            "env": self.env,
            "volumes": self.volumes,
            "http": self.http,
            "tty": self.tty,
        }
        if self.preset is not None:
            return await client.jobs.start(
                preset_name=self.preset, shm=self.shm, **container, **job
            )
        assert self.resources is not None
        return await client.jobs.run(
            apolo_sdk.Container(resources=self.resources, **container), **job
        )


def check_name(name: str, argument: str = "job_name") -> None:
    if not isinstance(name, str) or not 3 <= len(name) <= 40:
        raise JobArgumentError(argument, f"must be 3 to 40 characters, got {name!r}")
    if not NAME_RE.fullmatch(name) or name.startswith("job-"):
        raise JobArgumentError(
            argument,
            f"{name!r} is not allowed: lowercase letters, digits and single dashes, starting"
            " with a letter and not with 'job-'",
        )


def check_tags(argument: str, tags: Sequence[str], reserved: int = 0) -> None:
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise JobArgumentError(argument, "must be a list of strings")
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
            raise JobArgumentError(argument, f"{tag!r}: tags are 1 to {MAX_TAG_LENGTH} characters")
        if any(c.isspace() for c in tag):
            raise JobArgumentError(argument, f"{tag!r}: tags cannot contain white space")
    if len(set(tags)) + reserved > MAX_TAGS:
        raise JobArgumentError(
            argument,
            f"at most {MAX_TAGS - reserved} tags ({reserved} more identify the Airflow task)",
        )


def check_environ(argument: str, environ: Any) -> dict[str, str]:
    if not isinstance(environ, Mapping):
        hint = " (dict(pairs) makes one from pairs)" if _is_sequence(environ) else ""
        raise JobArgumentError(
            argument,
            f"must be a mapping of names to strings{hint}, got {type(environ).__name__}",
        )
    if len(environ) > MAX_ENV_VARS:
        raise JobArgumentError(argument, f"at most {MAX_ENV_VARS} variables")
    for key, value in environ.items():
        if (
            not isinstance(key, str)
            or not 0 < len(key) <= MAX_ENV_NAME_LENGTH
            or "=" in key
            or "\0" in key
        ):
            raise JobArgumentError(
                argument,
                f"{key!r} is not a variable name (1 to {MAX_ENV_NAME_LENGTH} characters,"
                " no '=' or NUL)",
            )
        if not isinstance(value, str):
            raise JobArgumentError(
                f"{argument}[{key!r}]",
                f"values must be strings, got {type(value).__name__} (quote it or use str())",
            )
        _text(f"{argument}[{key!r}]", value, max_length=MAX_ARGUMENT_LENGTH, process=True)
    return dict(environ)


def check_volumes(argument: str, volumes: Any) -> None:
    if isinstance(volumes, str) or not _is_sequence(volumes):
        hint = f" (put it in a list: [{volumes!r}])" if isinstance(volumes, str) else ""
        raise JobArgumentError(
            argument,
            f"must be a list of 'storage:PATH:/MOUNT[:ro|rw]' strings or Volumes, got"
            f" {type(volumes).__name__}{hint}",
        )
    if len(volumes) > MAX_VOLUMES:
        raise JobArgumentError(argument, f"at most {MAX_VOLUMES} volumes")
    for index, volume in enumerate(volumes):
        if isinstance(volume, str):
            _check_volume_string(f"{argument}[{index}]", volume)
        elif not isinstance(volume, apolo_sdk.Volume):
            raise JobArgumentError(
                f"{argument}[{index}]",
                f"must be a 'storage:PATH:/MOUNT[:ro|rw]' string or a Volume, got {volume!r}",
            )


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _text(
    argument: str,
    value: object,
    *,
    required: bool = False,
    max_length: int | None = None,
    process: bool = False,
) -> None:
    """``process``: the text reaches the job's process (argv, environment, a path), where
    a NUL character cannot go."""
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value.strip()):
        raise JobArgumentError(argument, f"must be a non-empty string, got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise JobArgumentError(argument, f"must be at most {max_length} characters")
    if process and "\0" in value:
        raise JobArgumentError(argument, "must not contain NUL characters")


def _check_volume_string(argument: str, volume: str) -> None:
    parts = volume.split(":")
    if len(parts) == 4 and parts[3] not in VOLUME_MODES:
        raise JobArgumentError(argument, f"{volume!r}: the mode must be 'ro' or 'rw'")
    if len(parts) not in (3, 4) or parts[0] != "storage" or not parts[2].startswith("/"):
        raise JobArgumentError(argument, f"{volume!r} is not 'storage:PATH:/MOUNT/PATH[:ro|rw]'")
    path = parts[1]
    if not path.strip("/"):
        raise JobArgumentError(
            argument,
            f"{volume!r}: the storage path is empty; name a folder (storage:data:/data), or"
            " storage:.:/mnt for the whole project",
        )
    # The SDK folds '..' away before sending, so 'storage:../..' would quietly become a
    # folder above the project, up to the cluster's root: refuse it while it can be seen.
    if ".." in unquote(path).split("/"):
        raise JobArgumentError(argument, f"{volume!r}: '..' is not allowed in storage paths")
