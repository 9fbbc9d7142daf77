"""A job's process: started from its launch plan, signalled through its process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass

from .runner import CannotRun, LaunchPlan
from .sandbox import bwrap_command

CHILD_PID = re.compile(rb'"child-pid":\s*(\d+)')


@dataclass(frozen=True)
class JobProcess:
    process: asyncio.subprocess.Process
    # Process groups to signal, in order, up to the first that exists: the job's own, then
    # (under bwrap) bwrap's, which the job is in until it makes its own just before its exec.
    groups: tuple[int, ...]

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.process.stdout is not None
        return self.process.stdout

    async def wait(self) -> int:
        """The exit code as a container runtime reports it: 128 + n for signal n."""
        code = await self.process.wait()
        return 128 - code if code < 0 else code

    def signal(self, signum: int) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signum)
                return
            except ProcessLookupError:
                continue  # not made yet, or ended: try the next
            except PermissionError:
                return  # the id has gone to someone else's processes


async def launch(plan: LaunchPlan) -> JobProcess:
    if plan.sandbox is None:
        process = await _exec(plan.argv, plan)
        return JobProcess(process, (process.pid,))
    info_read, info_write = os.pipe()
    try:
        process = await _exec(bwrap_command(plan.sandbox, info_write, plan.argv), plan, info_write)
    except BaseException:
        os.close(info_read)
        raise
    finally:
        os.close(info_write)  # bwrap holds the write end now: EOF comes once it is done
    match = CHILD_PID.search(await _read_to_end(info_read))
    if match is None:  # bwrap failed before it started the job: it is all there is
        return JobProcess(process, (process.pid,))
    return JobProcess(process, (int(match.group(1)), process.pid))


async def _exec(argv: list[str], plan: LaunchPlan, *pass_fds: int) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=plan.env,
            cwd=plan.cwd,
            start_new_session=True,  # its own process group, so it can be ended whole
            pass_fds=pass_fds,
        )
    except OSError as e:
        raise CannotRun(f'exec: "{argv[0]}": {e.strerror}', exit_code=127) from None


async def _read_to_end(fd: int) -> bytes:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    with open(fd, "rb", buffering=0) as pipe:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        with contextlib.closing(transport):
            return await reader.read()
