"""Fault injection: answer a share of requests as a struggling platform would.

For testing clients: ``--fault-rate 0.3 --fault-kinds 502,503,reset,delay`` answers 30 % of
requests (any endpoint, chosen at random) with a 502 or 503, a reset connection, or a
response held back for a while before the request is served normally. ``cut`` leaves the
requests alone and drops a log stream after a chunk, as often as the rate says.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KINDS = ("502", "503", "504", "reset", "delay", "cut")


@dataclass(frozen=True)
class FaultPlan:
    rate: float = 0.0
    kinds: tuple[str, ...] = ("502", "503", "reset", "delay")
    delay_seconds: float = 2.0
    seed: int | None = None

    @classmethod
    def parse(cls, rate: float, kinds: str, delay_seconds: float = 2.0) -> FaultPlan:
        chosen = tuple(k.strip() for k in kinds.split(",") if k.strip())
        unknown = sorted(set(chosen) - set(KINDS))
        if unknown:
            raise ValueError(
                f"--fault-kinds: unknown {unknown[0]!r}; choose from {', '.join(KINDS)}"
            )
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"--fault-rate: {rate} is not between 0 and 1")
        if rate > 0 and not chosen:
            raise ValueError("--fault-kinds: give at least one kind")
        return cls(rate, chosen, delay_seconds)

    @property
    def request_kinds(self) -> tuple[str, ...]:
        """The kinds that answer a request; ``cut`` acts on log streams only."""
        return tuple(kind for kind in self.kinds if kind != "cut")

    def cutter(self) -> StreamCutter:
        return StreamCutter(self)


class StreamCutter:
    """Cuts a log stream part way, as a dropped connection would, when resets are asked for."""

    def __init__(self, plan: FaultPlan) -> None:
        self._plan = plan
        self._rng = random.Random(plan.seed)

    def cut_now(self) -> bool:
        kinds = self._plan.kinds
        # Resets cut streams too, at half the rate, so that most streams still get through.
        chance = (
            self._plan.rate if "cut" in kinds else self._plan.rate / 2 if "reset" in kinds else 0
        )
        return self._rng.random() < chance


def fault_middleware(plan: FaultPlan) -> Middleware:
    rng = random.Random(plan.seed)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        kinds = plan.request_kinds
        if not kinds or plan.rate <= 0 or rng.random() >= plan.rate:
            return await handler(request)
        kind = rng.choice(kinds)
        if kind == "delay":
            await asyncio.sleep(plan.delay_seconds)
            return await handler(request)
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("fault injected: connection reset")
        status = int(kind)
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
        return web.Response(status=status, text=f"{reason} (fault injected)")

    return middleware
