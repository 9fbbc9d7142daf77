"""Turn a job into a local process: its argv, environment, working directory and mounts."""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from .records import Job
from .runtimes import RuntimeChoice
from .sandbox import INSTALL_HINT, Mount, bwrap_binary, bwrap_options

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
    # bwrap and its options, to run argv in a mount namespace; None runs argv directly.
    sandbox: list[str] | None = None


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
    job: Job, workdir: Path, volume_sources: list[Path], hosts: Path, runtime: RuntimeChoice
) -> LaunchPlan:
    """Run ``job`` under bubblewrap, seeing ``hosts`` as /etc/hosts, wherever bwrap exists."""
    argv = job_argv(job)
    env = job_env(job, workdir, runtime)
    mounts = [
        Mount(str(src), vol.dst_path, vol.read_only)
        for src, vol in zip(volume_sources, job.volumes, strict=True)
    ]
    bwrap = bwrap_binary()
    if bwrap is None:
        if mounts or job.working_dir:
            raise CannotRun(
                f"jobs with volumes or a working_dir need a mount namespace: {INSTALL_HINT}"
            )
        # The job reads the machine's own /etc/hosts: other jobs' hostnames do not resolve.
        _check_executable(argv[0], env["PATH"], [], runtime)
        return LaunchPlan(argv, env, str(workdir))
    chdir = job.working_dir
    if chdir and not _visible(chdir, mounts):
        # Like a container runtime, make a missing working directory: here, the job's own one.
        mounts.append(Mount(str(workdir), chdir))
    _check_executable(argv[0], env["PATH"], mounts, runtime)
    # Bound first, so that a volume the job itself mounts at /etc/hosts is bound over it.
    mounts.insert(0, Mount(str(hosts), "/etc/hosts", read_only=True))
    return LaunchPlan(argv, env, str(workdir), bwrap_options(bwrap, mounts, chdir))


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
