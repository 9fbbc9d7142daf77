"""A task killed with SIGKILL cannot remove the config directory that holds its token:
the next login on the machine does, and leaves a live process's directory alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_neuro.client.config_dirs import default_root, sweep
from airflow_neuro.hooks.neuro import NeuroHook

from ..conftest import PlatformProcess

# Logs in as a task does, says where, and waits to be killed.
LOGGED_IN = """
import time
from airflow_neuro.hooks.neuro import NeuroHook
hook = NeuroHook()
hook.login()
print(hook.async_client.config_dir, flush=True)
time.sleep(600)
"""


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of this test's own, for this process and its children: other
    test runs on the machine sweep the shared one, and must not race these checks."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


LogIn = Callable[[], tuple["subprocess.Popen[str]", Path]]


@pytest.fixture
def log_in(platform_process: PlatformProcess, temp_dir: Path) -> Iterator[LogIn]:
    """Start a process that logs in with the hook; its process and config directory."""
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], Path]:
        process = subprocess.Popen(
            [sys.executable, "-c", LOGGED_IN], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line, "the process did not log in"
        return process, Path(line)

    yield start
    for process in started:
        process.kill()
        process.wait()
    sweep(default_root())  # what the killed processes left


def test_a_login_removes_what_a_killed_task_left(
    platform_process: PlatformProcess, temp_dir: Path, log_in: LogIn
) -> None:
    killed, killed_dir = log_in()
    _, alive_dir = log_in()
    assert killed_dir.parent == alive_dir.parent == default_root()
    assert default_root().is_relative_to(temp_dir)
    assert default_root().stat().st_mode & 0o777 == 0o700

    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    # What SIGKILL leaves: the token on disk.
    assert platform_process.token.encode() in (killed_dir / "db").read_bytes()
    # And one made by hand as a process long gone would have left it.
    gone = subprocess.Popen(["true"])
    gone.wait()
    crafted = default_root() / f"{gone.pid}-1-crafted"
    crafted.mkdir(mode=0o700)
    (crafted / "db").write_text("a token")

    with NeuroHook() as hook:
        mine = hook.async_client.config_dir
        assert not killed_dir.exists()  # removed by this login
        assert not crafted.exists()
        assert alive_dir.exists()  # another live process's: untouched
        assert platform_process.token.encode() in (alive_dir / "db").read_bytes()
    assert not mine.exists()
