"""Retries of idempotent calls: only transient faults, within the budget."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from airflow_neuro.client.retry import Outage, retrying
from airflow_neuro.exceptions import PlatformUnavailable


def test_transient_faults_are_retried_until_an_answer() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise aiohttp.ClientConnectionError("refused")
        return "ok"

    assert asyncio.run(retrying(flaky, what="x", first_delay=0.001)) == "ok"
    assert len(calls) == 3


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    async def broken() -> None:
        calls.append(1)
        raise KeyError("no")

    with pytest.raises(KeyError):
        asyncio.run(retrying(broken, what="x", first_delay=0.001))
    assert calls == [1]


def test_an_outage_longer_than_the_budget_says_what_did_not_answer() -> None:
    async def down() -> None:
        raise aiohttp.ClientConnectionError("refused")

    with pytest.raises(PlatformUnavailable, match="did not answer the status of j for"):
        asyncio.run(retrying(down, what="the status of j", budget=0.05, first_delay=0.01))


def test_progress_starts_the_budget_again() -> None:
    async def scenario() -> int:
        outage = Outage("a stream", budget=0.05, first_delay=0.02, max_delay=0.02)
        error = aiohttp.ClientConnectionError("cut")
        # Each failure comes after some progress: the outage never adds up.
        for received in range(1, 10):
            await outage.ride_out(error, progress=received)
        return received

    assert asyncio.run(scenario()) == 9
