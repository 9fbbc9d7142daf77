"""Storage paths and storage:// URIs as local paths under one root, which nothing may leave.

Both a storage API path, ``<org>/<project>/<path>``, and a URI,
``storage://<cluster>/<org>/<project>/<path>``, map to ``<root>/<org>/<project>/<path>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import PathEscapes


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
    def __init__(self, root: Path, cluster: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        # Checks compare resolved paths, so the root is resolved once, here.
        self.root = Path(os.path.realpath(root))
        self._cluster = cluster

    def local_path(self, uri: str) -> Path:
        """storage://<cluster>/<org>/<project>/<path> -> <root>/<org>/<project>/<path>.

        The result is resolved (symlinks followed); ValueError for another scheme, another
        cluster, or a path that would leave the root.
        """
        # urlsplit, not yarl: yarl folds '..' away, and it must be seen to be refused.
        split = urlsplit(uri)
        if split.scheme != "storage":
            raise ValueError(f"{uri!r} is not a storage:// URI")
        if split.netloc != self._cluster:
            raise ValueError(f"{uri!r} is not on cluster {self._cluster!r}")
        if split.query or split.fragment:
            raise ValueError(f"{uri!r} has a query or fragment: encode '?' and '#' in paths")
        return self.locate(split_path(unquote(split.path)), follow=True)

    def locate(self, parts: list[str], *, follow: bool) -> Path:
        """<root>/<parts>, resolved, or PathEscapes if that leaves the root.

        With follow, a final symlink is followed (reading, writing, listing). Without it the
        entry itself is acted on (stat, delete, rename), so only its parent must stay inside.
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
