"""Mount namespaces for jobs with volumes, through bubblewrap.

The job sees the host's file system with each volume bound at its ``dst_path``. A mount
point that does not exist on the host is never created there: its nearest existing parent
is covered by a tmpfs that holds the parent's entries bound back in, plus the new point.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import PurePosixPath

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


def bwrap_binary() -> str | None:
    return shutil.which("bwrap")


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


def bwrap_command(bwrap: str, argv: list[str], mounts: list[Mount], chdir: str | None) -> list[str]:
    targets = [PurePosixPath(os.path.normpath(m.target)) for m in mounts]
    shadows = sorted(
        {str(_nearest_existing(t)) for t in targets if not os.path.lexists(t)},
        key=lambda p: (p.count("/"), p),
    )
    args = [bwrap, "--die-with-parent"]
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
    return [*args, "--", *argv]
