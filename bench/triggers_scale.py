"""Waiting at scale: many NeuroJobTriggers in one triggerer-like asyncio process.

Starts JOBS jobs on the local platform (a separate process) that end at random times
over a few minutes, runs one NeuroJobTrigger per job in this process's event loop, as
the triggerer does, and measures what waiting costs: peak RSS growth, CPU seconds,
requests per second to the platform, logins, and detection latency (job finished ->
trigger event). The same wait done by sensors in reschedule mode is measured on a
sample of real pokes (each a fresh process: a login and a status request) and scaled.

    .venv/bin/python bench/triggers_scale.py [--jobs 1000] [--poll-interval 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import local_platform, machine_line, percentile, record, rss_bytes  # noqa: E402


async def platform_requests(api_url: str, token: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{api_url}/local/stats", headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        return dict(await resp.json())


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, local_platform(Path(tmp) / "platform") as p:
        # The trigger reads its connection as the triggerer would.
        os.environ["AIRFLOW_HOME"] = str(Path(tmp) / "airflow")
        os.environ["AIRFLOW_CONN_NEURO_DEFAULT"] = json.dumps(
            {"conn_type": "neuro", "password": p.token, "extra": {"api_url": p.api_url}}
        )
        from airflow_neuro.client import NeuroClient, NeuroConnectionParams
        from airflow_neuro.triggers.neuro import NeuroJobTrigger

        params = NeuroConnectionParams(token=p.token, api_url=p.api_url)
        client = await NeuroClient.connect(params)
        sdk = client.sdk
        image = sdk.parse.remote_image("ubuntu")
        rng = random.Random(7)
        durations = [rng.uniform(args.min_seconds, args.max_seconds) for _ in range(args.jobs)]
        jobs = []
        for start in range(0, args.jobs, 50):
            jobs += await asyncio.gather(*(
                sdk.jobs.start(image=image, preset_name="cpu-small", command=f"sleep {d:.1f}")
                for d in durations[start:start + 50]
            ))  # fmt: skip
        print(f"{len(jobs)} jobs started", file=sys.stderr)

        # --- triggers --------------------------------------------------------------
        import gc

        gc.collect()
        base_rss, peak_rss = rss_bytes(), rss_bytes()
        before = await platform_requests(p.api_url, p.token)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        fired: dict[str, float] = {}

        async def sample() -> None:
            nonlocal peak_rss
            while True:
                peak_rss = max(peak_rss, rss_bytes())
                await asyncio.sleep(0.5)

        async def wait(job_id: str) -> None:
            trigger = NeuroJobTrigger(job_id=job_id, poll_interval=args.poll_interval)
            async for event in trigger.run():
                assert event.payload["result"] == "done", event.payload
                fired[job_id] = time.time()
                return

        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(wait(j.id) for j in jobs))
        sampler.cancel()
        elapsed = time.monotonic() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        after = await platform_requests(p.api_url, p.token)
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        by_route = {k: after["by_route"].get(k, 0) - before["by_route"].get(k, 0)
                    for k in after["by_route"]}  # fmt: skip
        requests = after["requests"] - before["requests"]  # the stats calls are not counted
        logins = by_route.get("GET /api/v1/config", 0)
        statuses = by_route.get("GET /api/v1/jobs/{id}", 0)
        lists = by_route.get("GET /api/v1/jobs", 0)
        latency = []
        for job in jobs:
            done = await client.status(job.id)
            assert done.history.finished_at is not None
            latency.append(fired[job.id] - done.history.finished_at.timestamp())

        # --- sensors in reschedule mode: a sample of real pokes ---------------------
        sample_jobs = jobs[: args.sensor_sample]
        before = await platform_requests(p.api_url, p.token)
        cpu_s0 = resource.getrusage(resource.RUSAGE_SELF)
        poke_started = time.monotonic()
        for job in sample_jobs:  # each poke: a new hook, a login, one status, close
            async with NeuroClient.session(params) as poke_client:
                await poke_client.status(job.id)
        poke_seconds = (time.monotonic() - poke_started) / len(sample_jobs)
        cpu_s1 = resource.getrusage(resource.RUSAGE_SELF)
        after = await platform_requests(p.api_url, p.token)
        per_poke = (after["requests"] - before["requests"]) / len(sample_jobs)
        poke_cpu = (
            (cpu_s1.ru_utime + cpu_s1.ru_stime) - (cpu_s0.ru_utime + cpu_s0.ru_stime)
        ) / len(sample_jobs)
        await client.close()

    polls = elapsed / args.poll_interval
    n = args.jobs
    sensor_requests = per_poke * n * polls
    rows = [
        machine_line(
            f"python bench/triggers_scale.py --jobs {n} --poll-interval {args.poll_interval}"
        ),
        "",
        f"{n} jobs ending between {args.min_seconds:.0f} s and {args.max_seconds:.0f} s;"
        f" poll interval {args.poll_interval:.0f} s; waiting took {elapsed:.0f} s.",
        "",
        f"| figure | {n} NeuroJobTriggers, one process | {n} sensors, reschedule mode"
        f" (scaled from {len(sample_jobs)} real pokes) | ratio |",
        "|---|---|---|---|",
        f"| requests to the platform | {requests} ({requests / elapsed:.1f}/s): {lists} job lists,"
        f" {statuses} status, {logins} login | {sensor_requests:.0f}"
        f" ({sensor_requests / elapsed:.1f}/s) | {sensor_requests / max(requests, 1):.0f}x fewer |",
        f"| status requests per job per poll interval | {statuses / n / polls:.3f}"
        f" (+ one list of live jobs per interval) | 1 | |",
        f"| logins | {logins} | {n * polls:.0f} (one per poke) | |",
        f"| CPU seconds in the waiting process | {cpu:.1f} s | {poke_cpu * n * polls:.1f} s"
        f" (in-process part of a poke only; a real poke also starts a task process) | |",
        f"| peak RSS growth | {(peak_rss - base_rss) / 2**20:.1f} MB"
        " | n/a (a process per poke) | |",
        f"| detection latency p50 / p99 | {percentile(latency, 0.5):.2f} s /"
        f" {percentile(latency, 0.99):.2f} s | up to the poke interval | |",
        f"| time per poke | | {poke_seconds * 1000:.0f} ms of login + status | |",
    ]
    record("triggers", "\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--min-seconds", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=150.0)
    parser.add_argument("--sensor-sample", type=int, default=100)
    asyncio.run(main(parser.parse_args()))
