"""Storage paths and storage:// URIs as local paths under one root, which nothing may leave.

Both a storage API path, ``<org>/<project>/<path>``, and a URI,
``storage://<cluster>/<org>/<project>/<path>``, map to ``<root>/<org>/<project>/<path>``.
What is under the root is only ever reached through ``tree`` (safe_fs.py): jobs can change
it at any moment, so a path checked here may lead elsewhere by the time it is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import PathEscapes
from .safe_fs import Owner, PinnedDir, RootedTree


def split_path(path: str) -> list[str]:
    """The components of a storage path. '..' is refused rather than folded: a client that
    sends it is trying to climb, and silently landing elsewhere would hide that."""
    if "\x00" in path:
        raise ValueError(f"storage paths cannot contain NUL: {path!r}")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathEscapes(f"'..' is not allowed in storage paths: {path!r}")
    return parts


def display_path(parts: list[str]) -> str:
    """A path as the SDK expects it back: from the storage root, with a leading slash."""
    return "/" + "/".join(parts)


class StoragePaths:
    """The storage root of one cluster.

    :param root: the directory storage is served from; made if missing.
    :param cluster: the cluster storage:// URIs must name.
    :param owner: (uid, gid) that jobs run as, when they do not run as the platform's own
        user: every directory and file the platform makes under the root is given to it,
        so that jobs can write where the storage API wrote. None leaves them as made.
    """

    def __init__(self, root: Path, cluster: str, owner: Owner | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        # Checks compare resolved paths, so the root is resolved once, here.
        self.root = Path(os.path.realpath(root))
        self._cluster = cluster
        self.tree = RootedTree(self.root, owner)

    def local_path(self, uri: str) -> Path:
        """storage://<cluster>/<org>/<project>/<path> -> <root>/<org>/<project>/<path>.

        The result is resolved (symlinks followed); ValueError for another scheme, another
        cluster, or a path that would leave the root. Only a check at the time of the call:
        to make a directory or mount one, use ``ensure_dir`` or ``pin_dir``.
        """
        return self.locate(self._uri_parts(uri), follow=True)

    def ensure_dir(self, uri: str) -> Path:
        """The directory a storage:// URI names, made if missing (and given to the owner).

        Made and checked component by component from the root, never through a symlink: at
        the time of the call the returned path leads to a directory inside the root with no
        symlink on the way (PathEscapes for one). A job can still swap a component for a
        symlink after the call, so whatever uses the path later (a bind mount) may be led
        elsewhere. Under bubblewrap as jobs run here that grants no access: the sandbox shows
        the host's file system anyway, and a mount grants no permission the job's user lacks.
        It can still misdirect where a later job's volume lands; ``pin_dir`` prevents that.
        """
        parts = self._uri_parts(uri)
        with self.tree.directory(parts, create=True):
            return self.root.joinpath(*parts)

    def pin_dir(self, uri: str) -> PinnedDir:
        """As ``ensure_dir``, but the directory is held open by a descriptor: mounting that
        (see PinnedDir) mounts the directory that was checked, whatever its path has become
        meanwhile. Close it once the mount is made.
        """
        return self.tree.pin(self._uri_parts(uri), create=True)

    def locate(self, parts: list[str], *, follow: bool) -> Path:
        """<root>/<parts>, resolved, or PathEscapes if that leaves the root.

        With follow, a final symlink is followed. Without it the entry itself is looked at,
        so only its parent must stay inside. A check of the moment only: the storage API
        walks ``tree`` instead.
        """
        if not parts:
            return self.root
        if follow:
            path = Path(os.path.realpath(self.root.joinpath(*parts)))
        else:
            path = Path(os.path.realpath(self.root.joinpath(*parts[:-1]))) / parts[-1]
        if not path.is_relative_to(self.root):
            raise PathEscapes(
                f"{display_path(parts)} leads outside the storage (through a symlink)"
            )
        return path

    def _uri_parts(self, uri: str) -> list[str]:
        # urlsplit, not yarl: yarl folds '..' away, and it must be seen to be refused.
        split = urlsplit(uri)
        if split.scheme != "storage":
            raise ValueError(f"{uri!r} is not a storage:// URI")
        if split.netloc != self._cluster:
            raise ValueError(f"{uri!r} is not on cluster {self._cluster!r}")
        if split.query or split.fragment:
            raise ValueError(f"{uri!r} has a query or fragment: encode '?' and '#' in paths")
        return split_path(unquote(split.path))
