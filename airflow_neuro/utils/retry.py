"""Transient platform faults: what counts as one, and bounded retries of idempotent calls."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import aiohttp
import apolo_sdk

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503, 504})
# The SDK raises a plain IllegalArgumentError for a 504, so the status is taken from here.
_last_status: ContextVar[int | None] = ContextVar("neuro_last_status", default=None)


class PlatformUnavailable(ConnectionError):
    """The platform kept failing for longer than the retry budget."""


def status_tracer() -> aiohttp.TraceConfig:
    """Records each response's status where the calling task can read it."""

    async def on_request_end(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        _last_status.set(params.response.status)

    async def on_request_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        _last_status.set(None)

    tracer = aiohttp.TraceConfig()
    tracer.on_request_start.append(on_request_start)
    tracer.on_request_end.append(on_request_end)
    return tracer


def is_transient(error: BaseException) -> bool:
    if isinstance(error, (apolo_sdk.BadGateway, apolo_sdk.ServerNotAvailable)):
        return True
    if isinstance(
        error,
        (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError),
    ):
        return True
    # Whatever the SDK made of it (an IllegalArgumentError for a 504, a RuntimeError when
    # login meets a 502), a call whose last answer was a gateway fault may be repeated.
    return _last_status.get() in RETRY_STATUSES


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    budget: float = 300.0,
    first_delay: float = 0.5,
    max_delay: float = 15.0,
    progress: Callable[[], int] | None = None,
) -> T:
    """``await call()``, again on transient faults with exponential backoff.

    Only for calls that are safe to repeat: status, lists, logs, login. ``budget`` bounds
    one outage: it counts from the first failure, and starts again whenever ``progress()``
    (say, the bytes of log received) has moved since, so a long stream is never cut short
    by faults it already survived.
    """
    outage_start: float | None = None
    seen = progress() if progress else 0
    delay = first_delay
    attempts = 0
    while True:
        try:
            return await call()
        except Exception as e:
            if not is_transient(e):
                raise
            now = time.monotonic()
            if progress is not None and progress() != seen:
                seen, outage_start, delay, attempts = progress(), None, first_delay, 0
            outage_start = now if outage_start is None else outage_start
            attempts += 1
            if now + delay - outage_start > budget:
                raise PlatformUnavailable(
                    f"the platform did not answer {what} for {now - outage_start:.0f} s"
                    f" ({attempts} attempts); last error: {type(e).__name__}: {e}"
                ) from e
            log.warning("%s failed (%s: %s); retrying in %.1f s", what, type(e).__name__, e, delay)
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(max_delay, delay * 2)
