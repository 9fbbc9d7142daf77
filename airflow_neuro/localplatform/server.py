"""Run the local platform: in-process (tests, the CLI) with a clean stop that ends every job."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
from types import TracebackType

from aiohttp import web

from .app import create_app
from .settings import Settings

# The one line printed on start: clients (and spawn.py) read the URL and token from it.
ANNOUNCE_FORMAT = "Local platform serving API {api_url} token {token}"


class CannotListen(Exception):
    """The host and port cannot be bound: busy, not this machine's, or no such name."""


def reachable_from_elsewhere(host: str) -> bool:
    """Whether serving on ``host`` lets other machines connect: anything but loopback.

    A name counts by the addresses it resolves to; one that resolves to none cannot be
    bound, so it exposes nothing.
    """
    if not host:
        return True  # every interface
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return False
    # An IPv6 address may carry a zone: fe80::1%eth0.
    addresses = {ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos}
    return not all(address.is_loopback for address in addresses)


def _listen_error(host: str, port: int, e: OSError) -> CannotListen:
    if isinstance(e, socket.gaierror):
        reason = f"unknown host ({e.strerror})"
    elif e.errno:
        # asyncio's own text repeats the address; the system's says what is wrong.
        reason = os.strerror(e.errno)
    else:
        reason = str(e)
    return CannotListen(f"cannot listen on {host}:{port}: {reason}")


class LocalPlatform:
    """``async with LocalPlatform(settings) as platform:`` serves until the block ends."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    async def start(self) -> None:
        self._runner = web.AppRunner(create_app(self.settings), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as e:
            await self.stop()  # the app started: its jobs and stores end cleanly
            raise _listen_error(self.host, self.port, e) from e
        # With port 0 the OS picked one: report the one really bound.
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalPlatform:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve_forever(platform: LocalPlatform, announce: bool = True) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with platform:
        if announce:
            announcement = ANNOUNCE_FORMAT.format(
                api_url=platform.api_url, token=platform.settings.token
            )
            print(announcement, flush=True)
        await stop.wait()
