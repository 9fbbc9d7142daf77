"""Local platform: POST-to-running latency and many concurrent short jobs.

Runs the platform as a subprocess (as users run it) and drives it with the real SDK. Each
figure is set against a floor measured in the same run: starting the same command as a
local process directly, so the ratio is the platform's own cost on this machine.

    .venv/bin/python bench/platform_jobs.py [--latency-runs 30] [--concurrent 100 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import apolo_sdk
from yarl import URL

from airflow_neuro.localplatform.spawn import spawned

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS_DOC, record

LOCAL_PLATFORM_DOC = BENCHMARKS_DOC.with_name("local-platform.md")

FINISHED = {
    apolo_sdk.JobStatus.SUCCEEDED,
    apolo_sdk.JobStatus.FAILED,
    apolo_sdk.JobStatus.CANCELLED,
}


@asynccontextmanager
async def local_platform(workdir: Path) -> AsyncIterator[apolo_sdk.Client]:
    with spawned(workdir / "data") as platform:
        config = workdir / "config"
        config.mkdir(mode=0o700)
        await apolo_sdk.login_with_token(platform.token, url=URL(platform.api_url), path=config)
        client = await apolo_sdk.get(path=config)
        try:
            yield client
        finally:
            await client.close()


async def start(client: apolo_sdk.Client, command: str) -> apolo_sdk.JobDescription:
    return await client.jobs.start(
        image=client.parse.remote_image("ubuntu"), preset_name="cpu-small", command=command
    )


async def wait(client: apolo_sdk.Client, job_id: str, statuses: set[apolo_sdk.JobStatus]) -> float:
    while True:
        job = await client.jobs.status(job_id)
        if job.status in statuses:
            return time.perf_counter()
        await asyncio.sleep(0.005)


async def local_spawn(argv: Sequence[str]) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*argv)
    await process.wait()
    return time.perf_counter() - started


async def latency(client: apolo_sdk.Client, runs: int) -> dict[str, float]:
    observed, server_side, floor = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        job = await start(client, "sleep 1")
        t1 = await wait(client, job.id, {apolo_sdk.JobStatus.RUNNING})
        observed.append(t1 - t0)
        described = await client.jobs.status(job.id)
        running = next(
            s for s in described.history.transitions if s.status == apolo_sdk.JobStatus.RUNNING
        )
        assert described.history.created_at is not None
        server_side.append((running.transition_time - described.history.created_at).total_seconds())
        await client.jobs.kill(job.id)
        floor.append(await local_spawn(["true"]))
    return {
        "observed_p50": statistics.median(observed),
        "server_p50": statistics.median(server_side),
        "floor_p50": statistics.median(floor),
    }


async def concurrent(client: apolo_sdk.Client, count: int) -> dict[str, float]:
    t0 = time.perf_counter()
    jobs = await asyncio.gather(*(start(client, "true") for _ in range(count)))
    await asyncio.gather(*(wait(client, j.id, FINISHED) for j in jobs))
    wall = time.perf_counter() - t0
    done = [await client.jobs.status(j.id) for j in jobs]
    failed = sum(j.status != apolo_sdk.JobStatus.SUCCEEDED for j in done)
    t1 = time.perf_counter()
    await asyncio.gather(*(local_spawn(["true"]) for _ in range(count)))
    floor = time.perf_counter() - t1
    return {"wall": wall, "floor": floor, "failed": failed}


def render(lat: dict[str, float], conc: dict[int, dict[str, float]], argv: list[str]) -> str:
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"Measured {date.today()} on {cpus} cores, {mem:.0f} GiB, Python"
        f" {platform.python_version()}: `{' '.join(argv)}`",
        "",
        "| figure | local platform | floor (direct local process) | ratio |",
        "|---|---|---|---|",
        f"| POST to `running` seen by the SDK, p50 | {lat['observed_p50'] * 1000:.1f} ms"
        f" | {lat['floor_p50'] * 1000:.1f} ms (spawn+exit of `true`)"
        f" | {lat['observed_p50'] / lat['floor_p50']:.1f}x |",
        f"| created to `running` in the job's history, p50 | {lat['server_p50'] * 1000:.1f} ms"
        f" | {lat['floor_p50'] * 1000:.1f} ms | {lat['server_p50'] / lat['floor_p50']:.1f}x |",
    ]
    for count, c in conc.items():
        lines.append(
            f"| {count} concurrent `true` jobs, start to all finished | {c['wall']:.2f} s"
            f" ({count / c['wall']:.0f} jobs/s, {c['failed']:.0f} failed)"
            f" | {c['floor']:.2f} s | {c['wall'] / c['floor']:.1f}x |"
        )
    return "\n".join(lines)


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--concurrent", type=int, nargs="+", default=[100, 200])
    args = parser.parse_args(argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        async with local_platform(Path(tmp)) as client:
            lat = await latency(client, args.latency_runs)
            conc = {n: await concurrent(client, n) for n in args.concurrent}
    table = render(lat, conc, ["python", "bench/platform_jobs.py", *argv[1:]])
    record("platform", table)
    record("platform", table, LOCAL_PLATFORM_DOC)


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
