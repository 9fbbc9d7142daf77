"""Who holds a loopback port, read from /proc: real sockets, real PID namespaces."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest

from airflow_neuro.localplatform import sandbox
from airflow_neuro.localplatform.ports import (
    listened_by_namespace,
    loopback_listeners,
    own_pid_namespace,
)

from ..conftest import free_port

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_binary() is None, reason="bubblewrap missing")

# Listens on argv[2] at argv[1] ("v4", "v6", or "v6only" for [::] with IPV6_V6ONLY), then
# prints its PID namespace's inode and waits.
LISTENER = """
import os, socket, sys, time
kind, port = sys.argv[1], int(sys.argv[2])
if kind == "v4":
    s = socket.socket()
    s.bind(("127.0.0.1", port))
else:
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(kind == "v6only"))
    s.bind(("::", port))
s.listen()
print(os.stat("/proc/self/ns/pid").st_ino, flush=True)
time.sleep(600)
"""


@contextmanager
def listening(family: socket.AddressFamily, host: str, port: int) -> Iterator[socket.socket]:
    with socket.socket(family) as s:
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen()
        yield s


def socket_inode(s: socket.socket) -> int:
    return os.fstat(s.fileno()).st_ino


@asynccontextmanager
async def namespaced_listener(kind: str, port: int) -> AsyncIterator[int]:
    """A process in a PID namespace of its own listening on ``port``; yields the namespace."""
    bwrap = sandbox.bwrap_binary()
    assert bwrap is not None
    process = await asyncio.create_subprocess_exec(
        bwrap, "--dev-bind", "/", "/", "--unshare-pid", "--die-with-parent",
        sys.executable, "-c", LISTENER, kind, str(port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield int(line)
    finally:
        process.kill()
        await process.wait()


def test_a_listener_counts_when_a_connection_to_127_0_0_1_may_reach_it() -> None:
    port = free_port()
    with listening(socket.AF_INET, "127.0.0.1", port) as s:
        assert loopback_listeners(port) == {socket_inode(s)}
        assert listened_by_namespace(port, own_pid_namespace())
    assert not listened_by_namespace(port, own_pid_namespace())  # closed
    with listening(socket.AF_INET, "0.0.0.0", port) as s:
        assert loopback_listeners(port) == {socket_inode(s)}
    # IPv6 loopback never gets a connection to 127.0.0.1.
    with listening(socket.AF_INET6, "::1", port):
        assert loopback_listeners(port) == set()
        assert not listened_by_namespace(port, own_pid_namespace())


@needs_bwrap
async def test_only_the_namespace_that_holds_every_listener_counts() -> None:
    port = free_port()
    async with namespaced_listener("v6", port) as namespace:
        assert namespace != own_pid_namespace()
        assert await asyncio.to_thread(listened_by_namespace, port, namespace)
        assert not await asyncio.to_thread(listened_by_namespace, port, own_pid_namespace())


@needs_bwrap
async def test_a_job_listener_beside_someone_elses_loopback_one_does_not_count() -> None:
    # [::] with IPV6_V6ONLY and 127.0.0.1 can both listen on a port; a connection to
    # 127.0.0.1 then goes to the IPv4 one, which is not the namespace's.
    port = free_port()
    with listening(socket.AF_INET, "127.0.0.1", port):
        async with namespaced_listener("v6only", port) as namespace:
            assert len(loopback_listeners(port)) == 2
            assert not await asyncio.to_thread(listened_by_namespace, port, namespace)
