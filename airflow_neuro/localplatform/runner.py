"""Turn a job into a local process: its argv, environment, working directory and mounts."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .records import Job
from .runtimes import RuntimeChoice
from .safe_fs import PinnedDir
from .sandbox import (
    INSTALL_HINT,
    JobUser,
    Mount,
    SandboxSpec,
    bwrap_binary,
    bwrap_options,
    setpriv_binary,
)

# What a container image usually sets; nothing of the platform's own environment leaks in.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CannotRun(Exception):
    """The job cannot start; the message becomes its status description."""

    def __init__(self, description: str, exit_code: int = 128) -> None:
        super().__init__(description)
        self.exit_code = exit_code


@dataclass(frozen=True)
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    # bwrap and its options: every job runs in a sandbox (sandbox.py says what it holds).
    sandbox: list[str]
    user: JobUser | None = None
    # Descriptors the sandbox's options name (pinned volumes): bwrap must inherit them.
    pass_fds: tuple[int, ...] = ()


def job_argv(job: Job) -> list[str]:
    """Entrypoint then command, split by shell rules and run without a shell, as Docker does."""
    try:
        argv = shlex.split(job.entrypoint or "") + shlex.split(job.command or "")
    except ValueError as e:
        raise CannotRun(f"cannot parse the command: {e}") from None
    if not argv:
        raise CannotRun(
            "no command: the local platform cannot run an image's default command,"
            " so a job needs a command or an entrypoint"
        )
    return argv


def job_env(job: Job, home: Path, runtime: RuntimeChoice) -> dict[str, str]:
    # The job's own env comes last and wins, PATH included: a container image's PATH is
    # only a default too.
    return {**runtime.environment(BASE_PATH), "HOME": str(home), "LANG": "C.UTF-8", **job.env}


def plan_launch(
    job: Job,
    workdir: Path,
    volume_sources: list[PinnedDir],
    hosts: Path,
    runtime: RuntimeChoice,
    *,
    hidden: Path,
    user: JobUser | None,
) -> LaunchPlan:
    """Run ``job`` in its sandbox, seeing ``hosts`` as /etc/hosts and nothing of ``hidden``
    (the platform's data dir) but its own ``workdir`` and volumes."""
    argv = job_argv(job)
    env = job_env(job, workdir, runtime)
    mounts = [
        Mount(str(src.path), vol.dst_path, vol.read_only, src.fd)
        for src, vol in zip(volume_sources, job.volumes, strict=True)
    ]
    bwrap = bwrap_binary()
    if bwrap is None:
        raise CannotRun(f"every job runs in a sandbox: {INSTALL_HINT}")
    if user is not None and setpriv_binary() is None:
        raise CannotRun(
            "the platform runs as root, so jobs run as an unprivileged user, which needs"
            " setpriv: install util-linux"
        )
    chdir = job.working_dir or str(workdir)
    if not _visible(chdir, mounts) and chdir != str(workdir):
        # Like a container runtime, make a missing working directory: here, the job's own one.
        mounts.append(Mount(str(workdir), chdir))
    _check_executable(argv[0], env["PATH"], mounts, runtime)
    # The Python the platform runs on, too: the machine's only one may sit in a directory
    # the job's user cannot enter, and a runtime's virtualenv often links to it.
    reachable = [*runtime.host_paths(), sys.base_prefix, sys.prefix]
    spec = SandboxSpec(
        mounts=tuple(mounts),
        home=str(workdir),
        chdir=chdir,
        hosts=str(hosts),
        hidden=(str(hidden),),
        reachable=tuple(dict.fromkeys(reachable)),
        user=user,
    )
    pinned = tuple(src.fd for src in volume_sources)
    return LaunchPlan(argv, env, str(workdir), bwrap_options(bwrap, spec), user, pinned)


def _under_mount(path: str, mounts: list[Mount]) -> bool:
    norm = os.path.normpath(path)
    return any(norm == m.target or norm.startswith(m.target.rstrip("/") + "/") for m in mounts)


def _visible(path: str, mounts: list[Mount]) -> bool:
    return _under_mount(path, mounts) or os.path.exists(path)


def _check_executable(program: str, path: str, mounts: list[Mount], runtime: RuntimeChoice) -> None:
    """Fail as a container runtime does (exit 127 or 126) before any process starts.

    ``path`` is the job's own PATH, the runtime's bin/ first, as the job would search it.
    The message then says which runtime it was: a program missing on the host is most
    often one that only the image (or its runtime) would have.
    """
    if "/" in program and not (program.startswith("/") and not _under_mount(program, mounts)):
        return  # relative to the job's directory or inside a volume: only the job can tell
    if shutil.which(program, path=path) is not None:
        return
    if "/" in program and os.path.exists(program):
        raise CannotRun(
            f'exec: "{program}": permission denied ({runtime.description})', exit_code=126
        )
    raise CannotRun(
        f'exec: "{program}": executable file not found in $PATH ({runtime.description})',
        exit_code=127,
    )
