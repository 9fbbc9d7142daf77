"""Mount namespaces for jobs, through bubblewrap.

The job sees the host's file system with each mount (a volume, the platform's hosts file)
bound at its target. A mount point that does not exist on the host is never created there:
its nearest existing parent is covered by a tmpfs that holds the parent's entries bound
back in, plus the new point.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import PurePosixPath

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) where user namespaces"
    " are allowed"
)
# bwrap sets PWD just before it execs the job, and a container's environment has none: env
# takes it out again, then execs the job in its place.
UNSET_PWD = ["/usr/bin/env", "-u", "PWD", "--"]


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@functools.cache
def bwrap_binary() -> str | None:
    """bwrap, when it is installed and can make namespaces here (a container that blocks
    user namespaces has the one without the other: jobs then run as plain processes)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    try:
        probe = subprocess.run(
            [bwrap, "--dev-bind", "/", "/", "true"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("bubblewrap cannot run here, so jobs run without a sandbox: %s", e)
        return None
    if probe.returncode != 0:
        log.warning(
            "bubblewrap cannot make namespaces here, so jobs run without a sandbox: %s",
            probe.stderr.decode(errors="replace").strip(),
        )
        return None
    return bwrap


def _nearest_existing(path: PurePosixPath) -> PurePosixPath:
    while not os.path.lexists(path):
        path = path.parent
    return path


def _shadow(directory: str) -> list[str]:
    """Cover ``directory`` with a tmpfs and bind everything it held back into place."""
    args = [] if directory == "/" else ["--tmpfs", directory]
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        else:
            args += ["--dev-bind", path, path]
    return args


def bwrap_options(bwrap: str, mounts: list[Mount], chdir: str | None) -> list[str]:
    """bwrap and its options; ``bwrap_command`` adds the job's argv."""
    targets = [PurePosixPath(os.path.normpath(m.target)) for m in mounts]
    shadows = sorted(
        {str(_nearest_existing(t)) for t in targets if not os.path.lexists(t)},
        key=lambda p: (p.count("/"), p),
    )
    # The job gets a session (and process group) of its own, apart from bwrap's monitor
    # process: the platform signals the job's group, as it would an unsandboxed job's. A
    # SIGTERM would end the monitor at once, and --die-with-parent would then SIGKILL the
    # job before it could end gracefully.
    args = [bwrap, "--die-with-parent", "--new-session"]
    if "/" in shadows:
        args += _shadow("/")
        shadows.remove("/")
    else:
        args += ["--dev-bind", "/", "/"]
    for directory in shadows:
        args += _shadow(directory)
    for mount, target in sorted(zip(mounts, targets, strict=True), key=lambda mt: len(mt[1].parts)):
        args += ["--ro-bind" if mount.read_only else "--bind", mount.source, str(target)]
    if chdir:
        args += ["--chdir", chdir]
    return args


def bwrap_command(options: list[str], info_fd: int, argv: list[str]) -> list[str]:
    """bwrap writes ``{"child-pid": N, ...}`` to ``info_fd``: N leads the job's own group."""
    return [*options, "--info-fd", str(info_fd), "--", *UNSET_PWD, *argv]
