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

from airflow_neuro.exceptions import PlatformUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503, 504})
# The SDK raises a plain IllegalArgumentError for a 504, so the status is taken from here.
_last_status: ContextVar[int | None] = ContextVar("neuro_last_status", default=None)


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


def last_status() -> int | None:
    """The status of the last answer this task received, if the last request got one."""
    return _last_status.get()


def is_transient(error: BaseException) -> bool:
    if isinstance(error, aiohttp.ClientSSLError):
        # A certificate that is not trusted, or TLS spoken to a plain-HTTP port: asking
        # again gets the same answer.
        return False
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


class Outage:
    """One outage of a call that is safe to repeat: exponential backoff within a budget.

    The budget counts from the first failure, and starts again whenever ``progress`` (say,
    the bytes of log received) has moved since the last failure, so a long stream is never
    cut short by faults it already survived.
    """

    def __init__(
        self,
        what: str,
        budget: float,
        *,
        first_delay: float = 0.5,
        max_delay: float = 15.0,
        progress: int = 0,
        transient: Callable[[BaseException], bool] = is_transient,
    ) -> None:
        self.what = what
        self._transient = transient
        self.budget = budget
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._delay = first_delay
        self._seen = progress
        self._started: float | None = None
        self._attempts = 0

    async def ride_out(self, error: Exception, progress: int = 0) -> None:
        """Sleep before the next attempt, or re-raise: not transient, or over budget."""
        if not self._transient(error):
            raise error
        now = time.monotonic()
        if progress != self._seen:
            self._seen, self._started, self._delay, self._attempts = (
                progress, None, self._first_delay, 0
            )  # fmt: skip
        started = self._started = now if self._started is None else self._started
        self._attempts += 1
        if now + self._delay - started > self.budget:
            raise PlatformUnavailable(
                f"the platform did not answer {self.what} for {now - started:.0f} s"
                f" ({self._attempts} attempts); last error: {type(error).__name__}: {error}"
            ) from error
        log.warning(
            "%s failed (%s: %s); retrying in %.1f s",
            self.what, type(error).__name__, error, self._delay,
        )  # fmt: skip
        await asyncio.sleep(self._delay * random.uniform(0.8, 1.2))
        self._delay = min(self._max_delay, self._delay * 2)


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    budget: float = 300.0,
    first_delay: float = 0.5,
    max_delay: float = 15.0,
) -> T:
    """``await call()``, again on transient faults with exponential backoff.

    Only for calls that are safe to repeat: status, lists, logs, login.
    """
    outage = Outage(what, budget, first_delay=first_delay, max_delay=max_delay)
    while True:
        try:
            return await call()
        except Exception as e:
            await outage.ride_out(e)
