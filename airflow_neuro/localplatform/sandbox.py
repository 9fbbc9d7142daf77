"""Every job in a sandbox of its own, through bubblewrap.

What a job sees and may do (docs/local-platform.md, "Security and isolation"):

- the host's file system read-only, with a private /tmp, /var/tmp and /dev/shm, a fresh
  /dev and a /proc of its own PID namespace;
- the platform's data dir covered by an empty tmpfs: the token, the database, the storage
  root and other jobs' files are not there; its own home directory is bound back in,
  writable, and its volumes are bound at their targets;
- its own PID and IPC namespaces: it sees and signals only its own processes, and all of
  them end when the namespace's first process (bwrap's init) is killed;
- a session of its own, and only the environment the job was given;
- when the platform runs as root, the job runs as an unprivileged user with no
  capabilities and no way to gain any (setpriv --no-new-privs).

The network is the host's, so that jobs serve HTTP on the machine's loopback as they
would on a container's port.

A mount point that does not exist on the host is never created there: its nearest
existing parent is covered by a tmpfs that holds the parent's entries bound back in, plus
the new point. A directory the job's user may not enter (/root, where the machine's Python
may live) is covered the same way, with only the entries the job needs bound back.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable
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
# Fresh, writable by everyone with the sticky bit, as on any Linux machine.
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")
# Made anew inside the sandbox: never bound from the host when its root is rebuilt.
OWN_MOUNTS = frozenset({"/dev", "/proc", "/tmp"})


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False
    # A descriptor of the source, opened when it was checked: mounted instead of the path,
    # which a job could have pointed elsewhere since (storage_paths.pin_dir).
    fd: int | None = None


@dataclass(frozen=True)
class JobUser:
    """Whom jobs run as when the platform runs as root."""

    uid: int
    gid: int


@dataclass(frozen=True)
class SandboxSpec:
    mounts: tuple[Mount, ...]  # volumes, bound at their targets
    home: str  # the job's own directory: bound back writable, HOME and the default cwd
    chdir: str
    hosts: str  # the platform's hosts file, seen as /etc/hosts
    hidden: tuple[str, ...]  # covered by an empty tmpfs: the platform's data dir
    reachable: tuple[str, ...]  # host paths the job must reach: its runtime, the Python
    user: JobUser | None  # None: the job runs as the platform's own user


@functools.cache
def bwrap_binary() -> str | None:
    """bwrap, when it is installed and can make namespaces here (a container that blocks
    user namespaces has the one without the other: jobs then cannot run)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    try:
        probe = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "true"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("bubblewrap cannot run here, so jobs cannot run: %s", e)
        return None
    if probe.returncode != 0:
        log.warning(
            "bubblewrap cannot make namespaces here, so jobs cannot run: %s",
            probe.stderr.decode(errors="replace").strip(),
        )
        return None
    return bwrap


@functools.cache
def setpriv_binary() -> str | None:
    return shutil.which("setpriv")


def drop_privileges(user: JobUser) -> list[str]:
    """The command that becomes ``user`` before the job's own, with every capability gone."""
    setpriv = setpriv_binary()
    if setpriv is None:
        raise FileNotFoundError("setpriv (util-linux) is needed to run jobs as another user")
    return [setpriv, f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]  # fmt: skip


def _under(path: str, directories: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in directories)


def _nearest_existing(path: PurePosixPath) -> PurePosixPath:
    while not os.path.lexists(path):
        path = path.parent
    return path


def _enterable(directory: str, user: JobUser) -> bool:
    try:
        st = os.stat(directory)
    except OSError:
        return True  # nothing there to cover
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == user.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


class _Covers:
    """Directories of the host's view to cover with a tmpfs, each with what is bound back:
    every entry (None), or only the named ones."""

    def __init__(self) -> None:
        self.entries: dict[str, set[str] | None] = {}

    def all_of(self, directory: str) -> None:
        self.entries[directory] = None

    def some_of(self, directory: str, entry: str) -> None:
        kept = self.entries.setdefault(directory, set())
        if kept is not None:
            kept.add(entry)

    def options(self) -> list[str]:
        args: list[str] = []
        for directory in sorted(self.entries, key=lambda p: (p.count("/"), p)):
            kept = self.entries[directory]
            # The sandbox's root is a tmpfs already: "/" is rebuilt from its entries.
            args += [] if directory == "/" else ["--tmpfs", directory]
            names = sorted(os.listdir(directory)) if kept is None else sorted(kept)
            for name in names:
                path = os.path.join(directory, name)
                if path in OWN_MOUNTS or not os.path.lexists(path):
                    continue
                if os.path.islink(path):
                    args += ["--symlink", os.readlink(path), path]
                else:
                    args += ["--ro-bind", path, path]
        return args


def bwrap_options(bwrap: str, spec: SandboxSpec) -> list[str]:
    """bwrap and its options; ``bwrap_command`` adds the job's argv."""
    fresh = (*PRIVATE_TMP, *spec.hidden)  # tmpfs inside: bwrap can make mount points there
    targets = [os.path.normpath(m.target) for m in spec.mounts]
    covers = _Covers()
    for target in targets:
        if not _under(target, fresh) and not os.path.lexists(target):
            covers.all_of(str(_nearest_existing(PurePosixPath(target))))
    if spec.user is not None:
        for path in (*spec.reachable, spec.home, spec.chdir, *targets):
            _open_the_way(PurePosixPath(os.path.normpath(path)), spec.user, fresh, covers)
    # The job's processes get a session of their own, apart from bwrap's init: the platform
    # signals the job's group for a graceful stop, and kills the init to end them all.
    args = [bwrap, "--new-session", "--unshare-pid", "--unshare-ipc"]
    if "/" not in covers.entries:
        args += ["--ro-bind", "/", "/"]
    args += covers.options()
    args += ["--dev", "/dev", "--proc", "/proc"]
    for directory in PRIVATE_TMP:
        if os.path.isdir(directory):
            args += ["--perms", "1777", "--tmpfs", directory]
    way = _Way(fresh)
    for directory in spec.hidden:
        args += [*way.to(directory), "--tmpfs", directory]
    for path in spec.reachable:
        if _under(path, fresh) and os.path.exists(path):
            args += [*way.to(path), "--ro-bind", path, path]
    args += [*way.to(spec.home), "--bind", spec.home, spec.home]
    # Bound before the volumes, so that a volume the job mounts at /etc/hosts wins.
    args += ["--ro-bind", spec.hosts, "/etc/hosts"]
    by_depth = sorted(zip(spec.mounts, targets, strict=True), key=lambda mt: mt[1].count("/"))
    for mount, target in by_depth:
        option = "--ro-bind" if mount.read_only else "--bind"
        args += way.to(target)
        if mount.fd is None:
            args += [option, mount.source, target]
        else:
            args += [f"{option}-fd", str(mount.fd), target]
    args += ["--chdir", spec.chdir]
    return args


class _Way:
    """The directories on the way to a mount point inside the sandbox's own tmpfs, made
    0755: bwrap would make each missing one 0700, which the job's user cannot enter."""

    def __init__(self, fresh: tuple[str, ...]) -> None:
        self._fresh = fresh
        self._made: set[str] = set()

    def to(self, path: str) -> list[str]:
        args: list[str] = []
        for directory in map(str, reversed(PurePosixPath(path).parents)):
            if directory in self._made or directory in self._fresh:
                continue
            if _under(directory, self._fresh):
                self._made.add(directory)
                args += ["--perms", "0755", "--dir", directory]
        return args


def _open_the_way(
    path: PurePosixPath, user: JobUser, fresh: tuple[str, ...], covers: _Covers
) -> None:
    """Cover each directory on the way to ``path`` that ``user`` may not enter, keeping
    only the entry that leads on."""
    for directory, entry in zip(reversed(path.parents), path.parts[1:], strict=False):
        where = str(directory)
        if _under(where, fresh):
            return  # from here on the sandbox's own tmpfs, which anyone may enter
        if os.path.isdir(where) and not _enterable(where, user):
            covers.some_of(where, entry)


def bwrap_command(
    options: list[str], info_fd: int, status_fd: int, argv: list[str], user: JobUser | None
) -> list[str]:
    """bwrap writes ``{"child-pid": N, "pid-namespace": M, ...}`` to ``info_fd`` once the
    sandbox is made (N is the namespace's init), and to ``status_fd`` too, followed by
    ``{"exit-code": C}`` when the job's main process ends: that file keeps the exit code
    when the platform is not there to see it."""
    become = drop_privileges(user) if user is not None else []
    return [*options, "--info-fd", str(info_fd), "--json-status-fd", str(status_fd),
            "--", *become, *UNSET_PWD, *argv]  # fmt: skip
