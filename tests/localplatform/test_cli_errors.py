"""The platform command's refusals: one line on stderr and an exit status, never a traceback."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from airflow_neuro.localplatform.spawn import read_announcement

MODULE = [sys.executable, "-m", "airflow_neuro.localplatform"]
CLI = [sys.executable, "-c", "from airflow_neuro.cli import main; main()", "platform", "serve"]
PROG = "python -m airflow_neuro.localplatform"


async def run(*argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of a command that is expected to end by itself."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def refusal(err: str) -> str:
    """The one error line of a command's stderr: the other lines may only be warnings (the
    platform warns, for one, when jobs cannot run on this machine)."""
    assert "Traceback" not in err
    *others, last = err.splitlines()
    assert all(line.startswith("warning: ") for line in others), err
    return last


@contextmanager
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


@asynccontextmanager
async def serving(*argv: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The platform serving, once it has announced itself; stopped when the block ends."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        read_announcement(line)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 30)


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("-1", "-1 is not a port number (0-65535)"),
        ("70000", "70000 is not a port number (0-65535)"),
        ("65536", "65536 is not a port number (0-65535)"),
        ("abc", "'abc' is not a port number"),
    ],
)
async def test_a_bad_port_is_a_usage_error(port: str, message: str, tmp_path: Path) -> None:
    status, out, err = await run(*MODULE, "--data-dir", str(tmp_path), f"--port={port}")
    assert status == 2
    assert out == ""
    assert "Traceback" not in err
    # argparse's own form: its usage, then the one line that says what is wrong.
    assert err.splitlines()[-1] == f"{PROG}: error: argument --port: {message}"


@pytest.mark.parametrize("command", [MODULE, CLI], ids=["module", "cli"])
async def test_a_busy_port_is_one_line(command: list[str], tmp_path: Path) -> None:
    with busy_port() as port:
        status, out, err = await run(*command, "--data-dir", str(tmp_path), "--port", str(port))
    assert (status, out) == (1, "")
    assert refusal(err) == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


async def test_an_unknown_host_is_one_line(tmp_path: Path) -> None:
    host = "no-such-host.invalid"  # .invalid never resolves (RFC 2606)
    status, out, err = await run(
        *MODULE, "--data-dir", str(tmp_path), "--host", host, "--port", "0"
    )
    assert (status, out) == (1, "")
    assert refusal(err).startswith(f"error: cannot listen on {host}:0: unknown host (")
    assert f"--host {host}" not in err  # a name that resolves to nothing exposes nothing


async def test_an_address_of_another_machine_is_one_line_after_the_warning(
    tmp_path: Path,
) -> None:
    host = "192.0.2.1"  # TEST-NET-1: no machine has it (RFC 5737)
    status, out, err = await run(
        *MODULE, "--data-dir", str(tmp_path), "--host", host, "--port", "0"
    )
    assert (status, out) == (1, "")
    assert f"warning: --host {host} is not a loopback address" in err
    assert refusal(err) == f"error: cannot listen on {host}:0: Cannot assign requested address"


async def test_a_non_loopback_host_is_warned_about(tmp_path: Path) -> None:
    argv = [*MODULE, "--data-dir", str(tmp_path), "--host", "0.0.0.0", "--port", "0"]
    async with serving(*argv) as process:
        assert process.stderr is not None
        # Printed before the platform announced itself: already there to read.
        line = ""
        while not line.startswith("warning: --host"):
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line.startswith("warning: "), line
    assert line == (
        "warning: --host 0.0.0.0 is not a loopback address: the token then travels over plain"
        " HTTP to anyone who can reach the port\n"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
async def test_a_loopback_host_is_not_warned_about(host: str, tmp_path: Path) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    argv = [*MODULE, "--data-dir", str(tmp_path), "--host", host, "--port", "0"]
    async with serving(*argv) as process:
        pass
    assert process.stderr is not None
    assert "warning: --host" not in (await process.stderr.read()).decode()
