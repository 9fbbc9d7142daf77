"""A directory tree reached only from a descriptor of its root, never through a symlink.

Jobs mount storage folders read-write, so anything under the storage root can change
between two system calls: a directory checked by its path may be a symlink to the outside by
the time it is used. Here a path is walked from the root one component at a time, each
opened relative to its parent's descriptor with O_NOFOLLOW, and the final entry is acted on
relative to its parent's descriptor too. Whatever is swapped meanwhile, the walk either ends
inside the tree or stops at a symlink, which is refused.

The tree has no symlinks of its own to follow: a symlink found inside it is an entry that
can be looked at, renamed and removed (the link itself), never walked through.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .errors import PathEscapes

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Another writer can make, remove or swap an entry between our calls: retry a few times,
# then give up rather than spin against a job that keeps changing it.
ATTEMPTS = 8

Owner = tuple[int, int]  # uid, gid


class SymlinkRefused(PathEscapes):
    """A symlink where an entry of the tree was expected to be walked through or opened."""

    def __init__(self, parts: Sequence[str]) -> None:
        super().__init__(
            f"{_shown(parts)} is a symlink: storage never follows one,"
            " as it could lead outside the storage"
        )


def _shown(parts: Sequence[str]) -> str:
    return "/" + "/".join(parts)


def _is_symlink(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_child_dir(parent: int, name: str, parts: Sequence[str]) -> int:
    """The directory ``name`` in ``parent``; SymlinkRefused when it is a symlink."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError as e:
        # O_DIRECTORY|O_NOFOLLOW answers ENOTDIR for a symlink, as for a file: only a look
        # at the entry itself tells which it was.
        if e.errno in (errno.ENOTDIR, errno.ELOOP) and _is_symlink(parent, name):
            raise SymlinkRefused(parts) from None
        raise


def open_entry(parent: int, name: str, flags: int, parts: Sequence[str], mode: int = 0o666) -> int:
    """``name`` in ``parent``, opened with ``flags``, never through a final symlink."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
    except OSError as e:
        if e.errno == errno.ELOOP:  # with O_NOFOLLOW: the entry is a symlink
            raise SymlinkRefused(parts) from None
        raise


@dataclass
class PinnedDir:
    """A directory of the tree held open by an O_PATH descriptor.

    Mounting the descriptor, not the path, mounts exactly the directory that was checked,
    whatever its path leads to by then: ``bwrap --bind-fd FD DEST`` (``--ro-bind-fd``,
    bubblewrap 0.8.0 and later), with ``fd`` passed on unchanged (``pass_fds``). Not
    ``--bind /proc/self/fd/FD``, although it mounts the same: bwrap then leaves the descriptor
    open in the job, which could write through it into a volume mounted read-only; with
    ``--bind-fd`` bwrap closes it once mounted. Close it here once bwrap has started.
    """

    fd: int
    path: Path  # where it was when it was opened, for messages and logs

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PinnedDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RootedTree:
    """The tree under ``root`` (an already resolved path that jobs cannot change).

    With ``owner`` (uid, gid), every directory and file made here is handed to that user, so
    that jobs running as it can write where the platform wrote.
    """

    def __init__(self, root: Path, owner: Owner | None = None) -> None:
        self.root = root
        self.owner = owner

    def give(self, fd: int) -> None:
        """Hands what ``fd`` refers to, something just made here, to the owner."""
        if self.owner is not None:
            os.fchown(fd, *self.owner)

    def _given(self, fd: int) -> int:
        """``fd`` once given to the owner; closed if that fails, so no descriptor leaks."""
        try:
            self.give(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextmanager
    def directory(self, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of <root>/<parts>, a directory; with ``create``, missing ones are
        made (and given to the owner) on the way, and a file at the end is EEXIST."""
        fd = self._open_directory(parts, create=create)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def parent(self, parts: Sequence[str], *, create: bool = False) -> Iterator[tuple[int, str]]:
        """The descriptor of the directory holding <root>/<parts>, and the entry's name in it.

        The entry itself is not looked at: what it is decides what may be done with it.
        """
        if not parts:
            raise ValueError("the storage root is not an entry of any directory")
        with self.directory(parts[:-1], create=create) as fd:
            yield fd, parts[-1]

    @contextmanager
    def nearest_existing(self, parts: Sequence[str]) -> Iterator[int]:
        """The deepest directory along <root>/<parts> that exists (the root at least)."""
        fd = os.open(self.root, DIR_FLAGS)
        try:
            for depth, name in enumerate(parts, 1):
                try:
                    child = _open_child_dir(fd, name, parts[:depth])
                except (FileNotFoundError, NotADirectoryError):
                    break
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _open_directory(self, parts: Sequence[str], *, create: bool) -> int:
        fd = os.open(self.root, DIR_FLAGS)
        try:
            for depth, name in enumerate(parts, 1):
                child = self._step(fd, name, parts[:depth], create, last=depth == len(parts))
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def pin(self, parts: Sequence[str], *, create: bool = False) -> PinnedDir:
        """<root>/<parts>, a directory, held by an O_PATH descriptor (see PinnedDir)."""
        with self.directory(parts, create=create) as fd:
            pinned = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        return PinnedDir(pinned, self.root.joinpath(*parts))

    def create_file(self, parent: int, name: str, parts: Sequence[str], flags: int) -> int:
        """``name`` in ``parent`` opened with ``flags`` and emptied, made if missing; a file
        made here is given to the owner, an existing one keeps its own."""
        for _ in range(ATTEMPTS):
            try:
                fd = open_entry(parent, name, flags | os.O_CREAT | os.O_EXCL, parts)
            except FileExistsError:
                pass
            else:
                return self._given(fd)
            try:
                return open_entry(parent, name, flags | os.O_TRUNC, parts)
            except FileNotFoundError:
                continue  # removed since: make it after all
        raise BlockingIOError(errno.EAGAIN, f"{_shown(parts)} kept changing while being created")

    def _step(self, parent: int, name: str, parts: Sequence[str], create: bool, last: bool) -> int:
        for _ in range(ATTEMPTS):
            try:
                return _open_child_dir(parent, name, parts)
            except FileNotFoundError:
                if not create:
                    raise
            except NotADirectoryError:
                if create and last:
                    # As mkdir -p answers for a file where the directory should be.
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)) from None
                raise
            try:
                os.mkdir(name, 0o777, dir_fd=parent)
            except FileExistsError:
                continue  # made meanwhile, by another request or a job: open what is there
            # Opened again by name: if it was swapped for a symlink already, that is refused,
            # and whatever directory is there now is the one walked into and given away.
            return self._given(_open_child_dir(parent, name, parts))
        raise BlockingIOError(errno.EAGAIN, f"{_shown(parts)} kept changing while being created")
