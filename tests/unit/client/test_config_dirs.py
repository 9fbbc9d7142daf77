"""Config directories (where the token is kept): one 0700 parent per user, and the removal
of those whose process is gone, with real processes and a real file system."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_neuro.client.config_dirs import (
    ensure_root,
    private_config_dir,
    process_start,
    sweep,
)
from airflow_neuro.exceptions import UnsafeCredentialsDir


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return ensure_root(tmp_path / "airflow-neuro-test")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()  # reaped: no process has this pid now
    return process.pid


def made_by(root: Path, pid: int, start: str) -> Path:
    """A directory as a login of process ``pid`` started at ``start`` leaves it."""
    directory = root / f"{pid}-{start}-abc123_x"
    directory.mkdir(mode=0o700)
    (directory / "db").write_text("the token")
    return directory


def test_the_parent_is_made_private(tmp_path: Path) -> None:
    root = ensure_root(tmp_path / "fresh")
    assert root.stat().st_mode & 0o777 == 0o700
    directory = private_config_dir(root)
    assert directory.parent == root
    assert directory.stat().st_mode & 0o777 == 0o700
    pid, start, _ = directory.name.split("-", 2)
    assert (int(pid), start) == (os.getpid(), process_start(os.getpid()))


def test_a_parent_opened_up_by_hand_is_closed_again(tmp_path: Path) -> None:
    (tmp_path / "opened").mkdir(mode=0o755)
    os.chmod(tmp_path / "opened", 0o755)
    assert ensure_root(tmp_path / "opened").stat().st_mode & 0o777 == 0o700


def test_a_symlinked_parent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeCredentialsDir, match="link is a symbolic link"):
        private_config_dir(tmp_path / "link")
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory away takes root")
def test_a_parent_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UnsafeCredentialsDir, match="belongs to uid 65534, not to this user"):
        private_config_dir(theirs)


def test_a_dead_process_dir_is_removed(root: Path) -> None:
    stale = made_by(root, dead_pid(), "12345")
    assert sweep(root) == [stale]
    assert not stale.exists()


def test_a_live_process_dir_stays(root: Path, sleeper: subprocess.Popen[bytes]) -> None:
    start = process_start(sleeper.pid)
    assert start is not None
    live = made_by(root, sleeper.pid, start)
    mine = private_config_dir(root)  # a login sweeps: neither is touched
    assert sweep(root) == []
    assert live.exists()
    assert mine.exists()


def test_a_reused_pid_does_not_keep_a_dir(root: Path, sleeper: subprocess.Popen[bytes]) -> None:
    start = process_start(sleeper.pid)
    assert start is not None
    # The pid runs, but it is not the process that made the directory: it started later.
    earlier = made_by(root, sleeper.pid, str(int(start) - 1))
    assert sweep(root) == [earlier]


def test_a_zombie_counts_as_gone(root: Path) -> None:
    process = subprocess.Popen(["true"])
    start = process_start(process.pid)
    deadline = time.monotonic() + 10
    while process_start(process.pid) is not None:  # until it has exited, not yet reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stale = made_by(root, process.pid, start or "0")
    assert sweep(root) == [stale]
    process.wait()


def test_what_it_did_not_make_is_left_alone(root: Path, tmp_path: Path) -> None:
    (root / "notes").mkdir()
    (root / "12-x").mkdir()
    (root / f"{dead_pid()}-1-file").write_text("not a directory")
    (tmp_path / "target").mkdir()
    (root / f"{dead_pid()}-1-link").symlink_to(tmp_path / "target")
    assert sweep(root) == []
    assert len(list(root.iterdir())) == 4
    assert (tmp_path / "target").exists()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory away takes root")
def test_another_users_dir_is_left_alone(root: Path) -> None:
    theirs = made_by(root, dead_pid(), "1")
    os.chown(theirs, 65534, 65534)
    assert sweep(root) == []


def test_two_processes_sweeping_at_once_both_succeed(root: Path) -> None:
    gone = dead_pid()
    for n in range(300):
        stale = made_by(root, gone, str(n))
        for f in range(5):
            (stale / f"file{f}").write_text("x")
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from airflow_neuro.client.config_dirs import sweep
        sys.stdin.readline()  # both start together
        sweep(Path({str(root)!r}))
        print("swept")
    """)
    sweepers = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for sweeper in sweepers:
        assert sweeper.stdin is not None
        sweeper.stdin.write("go\n")
        sweeper.stdin.flush()
    for sweeper in sweepers:
        out, err = sweeper.communicate(timeout=60)
        assert (sweeper.returncode, out.splitlines()[-1]) == (0, "swept"), err
        assert "Could not remove" not in out + err
    assert list(root.iterdir()) == []
