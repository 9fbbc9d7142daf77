"""Where logins keep the SDK's config (the token with it), and removing what killed
processes left behind.

The SDK keeps the token in a file of its config directory. A client removes its own
directory when it closes, but a process killed with SIGKILL (or by the OOM killer) cannot.
So every directory lives under one parent only this user can enter,
``<tempdir>/airflow-neuro-<uid>/``, and is named ``<pid>-<start time>-<random>`` after the
process that made it; each new login removes the directories whose process is gone.
The start time (``/proc/<pid>/stat``, field 22) tells a reused pid from the process that
made the directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from airflow_neuro.exceptions import UnsafeCredentialsDir

log = logging.getLogger(__name__)

PROC = Path("/proc")
# Where /proc is missing (macOS), only the pid is checked: the start time is written as 0.
UNKNOWN_START = "0"
_NAME = re.compile(r"(?P<pid>[1-9][0-9]*)-(?P<start>[0-9]+)-[a-z0-9_]+")


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / f"airflow-neuro-{os.getuid()}"


def private_config_dir(root: Path | None = None) -> Path:
    """A fresh directory only this user can read, as the SDK requires for its config.

    Directories that dead processes left under the same parent are removed first.
    """
    parent = ensure_root(root or default_root())
    sweep(parent)
    pid = os.getpid()
    # Named after this process before it exists, so no sweep ever takes it for a dead one's.
    prefix = f"{pid}-{process_start(pid) or UNKNOWN_START}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def ensure_root(root: Path) -> Path:
    """The parent of every config directory: made 0700, refused if anyone else could have
    put it there (a symbolic link, another user's directory)."""
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    info = os.lstat(root)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeCredentialsDir(
            f"{root} is a symbolic link: platform tokens are not kept there; remove it"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeCredentialsDir(f"{root} is not a directory: platform tokens are not kept there")
    if info.st_uid != os.getuid():
        raise UnsafeCredentialsDir(
            f"{root} belongs to uid {info.st_uid}, not to this user (uid {os.getuid()}):"
            " platform tokens are not kept there; remove it"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(root, 0o700)  # this user's own, opened up by hand: closed again
    return root


def sweep(root: Path) -> list[Path]:
    """Remove the config directories of processes that are gone; return them.

    Several processes may sweep at once: a directory another one removes first is skipped.
    Anything not named as this module names directories, or not a directory of this user's,
    is left alone. Failing to remove one is logged, never raised: it must not stop a login.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    uid = os.getuid()
    for entry in entries:
        made_by = _NAME.fullmatch(entry.name)
        if made_by is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue
        if is_running(int(made_by["pid"]), made_by["start"]):
            continue
        path = Path(entry.path)
        _remove(path)
        removed.append(path)
    if removed:
        log.info("Removed %d config directories left by processes that are gone", len(removed))
    return removed


def is_running(pid: int, start: str) -> bool:
    """Whether the process that made a directory runs still (not a later one with its pid)."""
    now = process_start(pid)
    if now is None:
        return False
    # Without /proc the pid is all there is to go by.
    return start == UNKNOWN_START or now in (UNKNOWN_START, start)


def process_start(pid: int) -> str | None:
    """When the process started (clock ticks since boot), or None if it is gone.

    A zombie counts as gone: it runs no code and holds nothing open.
    """
    if not PROC.is_dir():
        return UNKNOWN_START if _signalable(pid) else None
    try:
        data = (PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses.
    fields = data[data.rindex(b")") + 2 :].split()
    state, start = fields[0], fields[19]  # fields 3 and 22
    if state in (b"Z", b"X"):
        return None
    return start.decode()


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def _remove(path: Path) -> None:
    def vanished_or_logged(function: Any, name: str, error: BaseException) -> None:
        if not isinstance(error, FileNotFoundError):  # another sweep removed it first
            log.warning("Could not remove %s (left by a process that is gone): %s", name, error)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=vanished_or_logged)
    else:
        shutil.rmtree(path, onerror=lambda f, name, info: vanished_or_logged(f, name, info[1]))
