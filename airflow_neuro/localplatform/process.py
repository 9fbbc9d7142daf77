"""A job's processes: started in their sandbox, followed, signalled, and found again.

A job is, seen from outside, bwrap's monitor (the platform's child) and the init of the
job's PID namespace, which leads the session and process group of the job's processes.
None of them depends on the platform staying up: the job's output goes straight to its
log file, and bwrap writes the main process's exit code to a status file. So a platform
that restarts (after SIGTERM or kill -9) finds its jobs again from the files in each
job's directory, ``process.json`` and ``status.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .runner import CannotRun, LaunchPlan
from .sandbox import bwrap_command

STATUS_FILE = "status.json"
PROCESS_FILE = "process.json"


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot: with the pid, it names one process
    for good, where a pid alone may be reused by the time a restarted platform looks."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None  # ended: a zombie is not a live process
    return int(fields[19])


@dataclass(frozen=True)
class ProcessIds:
    monitor: int
    init: int  # leads the job's session and process group too
    pid_namespace: int
    # Start times of the two, as start_time gives them.
    monitor_start: int
    init_start: int

    def save(self, directory: Path) -> None:
        tmp = directory / (PROCESS_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.__dict__, f)
        os.replace(tmp, directory / PROCESS_FILE)

    @classmethod
    def load(cls, directory: Path) -> ProcessIds | None:
        try:
            return cls(**json.loads((directory / PROCESS_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def is_current(self, pid: int, started: int) -> bool:
        return start_time(pid) == started


def exit_code_recorded(directory: Path) -> int | None:
    """The job's exit code as bwrap wrote it (128 + n for signal n), if it has ended."""
    try:
        lines = (directory / STATUS_FILE).read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("exit-code"), int):
                return int(record["exit-code"])
    return None


class JobProcess:
    """The processes of one job, started here or found again after a restart."""

    def __init__(self, ids: ProcessIds, directory: Path, child: subprocess.Popen[bytes] | None):
        self.ids = ids
        self._directory = directory
        self._child = child  # bwrap's monitor, when this platform started it
        self._ended: asyncio.Future[None] | None = None

    @property
    def pid_namespace(self) -> int:
        return self.ids.pid_namespace

    def signal(self, signum: int) -> None:
        """SIGKILL ends every process of the job (its namespace's init dies, and the kernel
        kills the rest); any other signal goes to the job's process group, which the init
        leads. The init itself ignores it: a namespace's init gets only the signals it
        handles, and bwrap's handles none. Before the init has made its session, the job
        has not started: there is nothing to signal but the init, and only SIGKILL ends it.
        """
        ids = self.ids
        if not ids.is_current(ids.init, ids.init_start):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if signum == signal.SIGKILL:
                os.kill(ids.init, signal.SIGKILL)
            else:
                os.killpg(ids.init, signum)

    async def wait(self) -> int | None:
        """The job's exit code once its main process has ended (128 + n for signal n), or
        None when it ended and nothing recorded how: killed with the machine, say."""
        if self._ended is None:
            self._ended = asyncio.ensure_future(self._wait_monitor())
        await asyncio.shield(self._ended)
        code = exit_code_recorded(self._directory)
        if code is None and self._child is not None and self._child.returncode is not None:
            # bwrap failed before the job started: its own status, its message in the log.
            rc = self._child.returncode
            code = 128 - rc if rc < 0 else rc
        return code

    async def _wait_monitor(self) -> None:
        if self._child is not None:
            await _exited(self._child.pid, reap=self._child.poll)
        elif self.ids.is_current(self.ids.monitor, self.ids.monitor_start):
            await _exited(self.ids.monitor)

    def leftovers_alive(self) -> bool:
        return self.ids.is_current(self.ids.init, self.ids.init_start)

    @classmethod
    def find(cls, directory: Path) -> JobProcess | None:
        """A job's processes again, from its files, if it was ever started."""
        ids = ProcessIds.load(directory)
        return cls(ids, directory, None) if ids is not None else None


async def _exited(pid: int, reap: Callable[[], object] | None = None) -> None:
    """Wait until ``pid`` has ended, through a pidfd: it works for processes that are not
    this one's children, as a restarted platform's jobs are not. ``reap`` collects the
    exit status of a child."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        if reap is not None:
            reap()
        return
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        await ended
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    if reap is not None:
        reap()


async def launch(plan: LaunchPlan, directory: Path, output: Path) -> JobProcess:
    """Start ``plan`` with its output appended to the file ``output``."""
    private = os.O_CREAT | os.O_CLOEXEC
    status = os.open(directory / STATUS_FILE, os.O_WRONLY | os.O_TRUNC | private, 0o600)
    try:
        out = os.open(output, os.O_WRONLY | os.O_APPEND | private, 0o600)
    except BaseException:
        os.close(status)
        raise
    info_read, info_write = os.pipe()
    try:
        argv = bwrap_command(plan.sandbox, info_write, status, plan.argv, plan.user)
        try:
            # Popen, not asyncio's: the platform follows the job through a pidfd, which works
            # the same for the jobs a restarted platform finds, and fork+exec is brief.
            child = subprocess.Popen(  # noqa: ASYNC220
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=plan.env,
                cwd=plan.cwd,
                # Its own session: a Ctrl-C meant for the platform never reaches a job.
                start_new_session=True,
                pass_fds=(info_write, status, *plan.pass_fds),
            )
        except OSError as e:
            raise CannotRun(f'exec: "{argv[0]}": {e.strerror}', exit_code=127) from None
    except BaseException:
        os.close(info_read)
        raise
    finally:
        os.close(info_write)  # bwrap holds the write end now: EOF comes once it is done
        os.close(status)
        os.close(out)
    info = _parse_info(await _read_to_end(info_read))
    monitor_start = start_time(child.pid) or 0
    if info is None:  # bwrap failed before it made the sandbox: it is all there is
        ids = ProcessIds(child.pid, child.pid, 0, monitor_start, monitor_start)
        return JobProcess(ids, directory, child)
    init, namespace = info
    ids = ProcessIds(
        monitor=child.pid,
        init=init,
        pid_namespace=namespace,
        monitor_start=monitor_start,
        init_start=start_time(init) or 0,
    )
    ids.save(directory)
    return JobProcess(ids, directory, child)


def _parse_info(raw: bytes) -> tuple[int, int] | None:
    try:
        info = json.loads(raw)
        return int(info["child-pid"]), int(info["pid-namespace"])
    except (ValueError, KeyError, TypeError):
        return None


def main_process(init: int) -> int | None:
    """The job's main process, the first child of its namespace's init, while it runs."""
    try:
        with open(f"/proc/{init}/task/{init}/children") as f:
            children = f.read().split()
    except OSError:
        return None
    return min(map(int, children)) if children else None


async def _read_to_end(fd: int) -> bytes:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    with open(fd, "rb", buffering=0) as pipe:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        with contextlib.closing(transport):
            return await reader.read()
