"""Which local runtime a job's image stands for, and how the mapping is configured.

Nothing is pulled here, so an image cannot bring its own programs. Instead a runtime, a
directory with a ``bin/`` (a virtualenv, or any prefix), can be mapped to an image: a job
with that image finds the runtime's programs first on its ``PATH``. A job with an unmapped
image runs with the host's programs, and its record says so.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RuntimeChoice:
    """Where one job's programs come from: ``runtime``, or the host's when it is None."""

    image: str
    runtime: Path | None

    @property
    def description(self) -> str:
        """For the job's record: a job that cannot find a program shows where it looked."""
        if self.runtime is None:
            return f"runs on the host: no runtime for image '{self.image}'"
        return f"runtime {self.runtime} for image '{self.image}'"

    def environment(self, base_path: str) -> dict[str, str]:
        """What the runtime adds to a job's environment, before the job's own ``env``."""
        if self.runtime is None:
            return {"PATH": base_path}
        env = {"PATH": f"{self.runtime / 'bin'}:{base_path}"}
        # As an activated venv would: tools that look for the venv (pip, IDEs) find it.
        if (self.runtime / "pyvenv.cfg").is_file():
            env["VIRTUAL_ENV"] = str(self.runtime)
        return env

    def host_paths(self) -> list[str]:
        """What a sandboxed job with this runtime must be able to reach: the runtime, and
        the Python a virtualenv's ``bin/python`` links to (its ``home`` in pyvenv.cfg)."""
        if self.runtime is None:
            return []
        paths = [str(self.runtime.resolve())]
        with contextlib.suppress(OSError):
            for line in (self.runtime / "pyvenv.cfg").read_text().splitlines():
                key, equals, value = line.partition("=")
                if equals and key.strip() == "home" and value.strip():
                    paths.append(str(Path(value.strip()).resolve().parent))
        return paths


def repository(image: str) -> str:
    """``image`` without its tag or digest: ``python:3.11`` -> ``python``. A colon before
    the last slash belongs to a registry's port (``registry:5000/team/model``), not a tag."""
    name = image.split("@", 1)[0]
    head, colon, tag = name.rpartition(":")
    return head if colon and "/" not in tag else name


def choose_runtime(runtimes: Mapping[str, Path], image: str) -> RuntimeChoice:
    """The runtime mapped to ``image`` exactly as the job has it, else one mapped to its
    repository with no tag (``python`` for any ``python:TAG``), else none."""
    runtime = runtimes.get(image)
    if runtime is None:
        runtime = runtimes.get(repository(image))
    return RuntimeChoice(image, runtime)


def parse_runtimes(file: Path | None, entries: Iterable[str]) -> dict[str, Path]:
    """``--runtimes FILE`` then each ``--runtime IMAGE=DIR``, which overrides the file's
    entry for that image. Raises ValueError naming the option at fault."""
    runtimes = _read_file(file) if file is not None else {}
    for entry in entries:
        image, equals, directory = entry.partition("=")
        if not equals or not image.strip() or not directory:
            raise ValueError(f"--runtime: expected IMAGE=DIR, got {entry!r}")
        runtimes[image.strip()] = _runtime_dir("--runtime", image, Path(directory))
    return runtimes


def _read_file(file: Path) -> dict[str, Path]:
    """A JSON object of image to directory; relative directories are the file's own
    neighbours, so a project can keep the file next to its venvs wherever it is run from."""
    try:
        data = json.loads(file.read_text())
    except OSError as e:
        raise ValueError(f"--runtimes: cannot read {file}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--runtimes: {file} is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"--runtimes: {file} must hold a JSON object of image to directory,"
            f" not {type(data).__name__}"
        )
    runtimes = {}
    for image, directory in data.items():
        if not image.strip() or not isinstance(directory, str) or not directory:
            raise ValueError(
                f"--runtimes: {file}: {image!r} must map to a directory, got {directory!r}"
            )
        path = file.parent / Path(directory).expanduser()
        runtimes[image.strip()] = _runtime_dir("--runtimes", image, path)
    return runtimes


def _runtime_dir(option: str, image: str, directory: Path) -> Path:
    # Absolute, so jobs (which run in their own directories) and records name the same place.
    resolved = directory.expanduser().resolve()
    if not (resolved / "bin").is_dir():
        raise ValueError(f"{option}: {image}: {resolved} has no bin/ directory")
    return resolved
