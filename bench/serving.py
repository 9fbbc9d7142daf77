"""Serving: how soon a ready service is noticed, and what the platform's proxy adds.

1. Readiness: the example model server answers its health check with 503 while it warms
   up, then 200, and logs the wall-clock time from which it answers 200. ``wait_ready``
   (what NeuroDeployOperator and its trigger run) returns some time after that: the lag is
   the figure, against the target of one poll interval + 0.5 s. The warm-ups are long
   enough for the checks to have backed off to the poll interval, and end at a random
   point of it.
2. Predict: the same POST /predict sent the operators' way (``Services.request`` through
   the local platform's proxy, with the token) and straight to the job's port (the floor),
   interleaved, on one keep-alive session each.

    .venv/bin/python bench/serving.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import local_platform, machine_line, percentile, record  # noqa: E402

from airflow_neuro.client import NeuroClient, NeuroConnectionParams, TaskIdentity  # noqa: E402
from airflow_neuro.client.http import RequestSpec  # noqa: E402
from airflow_neuro.client.service import HealthProbe, Services  # noqa: E402
from airflow_neuro.job_request import JobRequest  # noqa: E402

SERVER = HERE.parent / "examples" / "dags" / "model_server.py"
CODE = "bench-serving"  # the storage folder holding the server and its model
# (poll interval, shortest warm-up, deploys): the checks reach the interval in ~3 s / ~15 s.
READINESS = ((1.0, 4.0, 6), (5.0, 20.0, 4))
HEALTHY_FROM = re.compile(r"healthy from ([0-9.]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_server(
    client: NeuroClient, model: Path, trial: str, warmup: float = 0.0
) -> tuple[str, int]:
    port = free_port()
    request = JobRequest(
        job_command=(
            f"python3 /srv/{SERVER.name} serve --model {model} --port {port} --warmup {warmup}"
        ),
        job_image="python:3.11",
        job_http_port=port,
        job_volumes=[f"storage:{CODE}:/srv:ro"],
    )
    identity = TaskIdentity("bench", "serve", trial, -1, 1)
    prepared = request.resolve(client.sdk, identity.tags)
    job = await client.submit_once(prepared, identity)
    return job.id, port


async def first_healthy(client: NeuroClient, job_id: str) -> float:
    async for line in client.log_lines(job_id):
        found = HEALTHY_FROM.search(line)
        if found:
            return float(found.group(1))
    raise RuntimeError(f"job {job_id} never logged when it would be healthy")


async def readiness(
    client: NeuroClient, model: Path, interval: float, warmup: float, trials: int
) -> list[float]:
    lags = []
    for trial in range(trials):
        warmup_s = warmup + random.uniform(0, interval)
        job_id, _ = await start_server(client, model, f"ready-{interval}-{trial}", warmup_s)
        probe = HealthProbe("/health", deadline=time.time() + 60, poll_interval=interval)
        await Services(client).wait_ready(job_id, probe)
        noticed = time.time()
        await client.cancel(job_id)
        lags.append(noticed - await first_healthy(client, job_id))
    return lags


async def predict(client: NeuroClient, model: Path, requests: int) -> tuple[list[float], ...]:
    job_id, port = await start_server(client, model, "predict")
    services = Services(client)
    url = (await services.wait_ready(job_id, HealthProbe("/health", deadline=time.time() + 60,
                                                         poll_interval=0.2))).http_url  # fmt: skip
    spec = RequestSpec("POST", json={"x": [1.0, 2.0, 3.0]})
    direct_url = f"http://127.0.0.1:{port}/predict"
    proxied, by_name, direct = [], [], []
    async with aiohttp.ClientSession() as session:
        for _ in range(requests):
            started = time.perf_counter()
            answer = await services.request(url, "/predict", spec)
            proxied.append(time.perf_counter() - started)
            assert answer.status == 200, answer
            started = time.perf_counter()
            answer = await services.request(job_id, "/predict", spec)
            by_name.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with session.post(direct_url, json=spec.json) as response:
                await response.read()
                assert response.status == 200
            direct.append(time.perf_counter() - started)
    await client.cancel(job_id)
    return direct, proxied, by_name


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, local_platform(Path(tmp) / "platform") as served:
        # Jobs see the server and the model through a storage volume, as on the platform.
        code = Path(tmp) / "platform" / "storage" / "local" / "default" / CODE
        code.mkdir(parents=True)
        (code / "model.json").write_text('{"kind": "linear", "slope": 2.0, "intercept": 1.0}')
        shutil.copy(SERVER, code)
        model = Path("/srv/model.json")  # as the server job sees it
        params = NeuroConnectionParams(api_url=served.api_url, token=served.token)
        async with NeuroClient.session(params) as client:
            lags = {
                (interval, warmup): await readiness(client, model, interval, warmup, trials)
                for interval, warmup, trials in READINESS
            }
            direct, proxied, by_id = await predict(client, model, requests)

    rows = [
        machine_line("python bench/serving.py"),
        "",
        "| readiness, poll interval | lag p50 | lag max | target (interval + 0.5 s) |",
        "|---|---|---|---|",
    ]
    for (interval, warmup), values in lags.items():
        met = "met" if max(values) <= interval + 0.5 else "MISSED"
        rows.append(
            f"| {interval:g} s ({len(values)} deploys, {warmup:g}-{warmup + interval:g} s"
            " warm-up) |"
            f" {ms(statistics.median(values))} | {ms(max(values))} | {met} |"
        )
    floor = statistics.median(direct)
    rows += [
        "",
        f"| POST /predict ({requests} each, interleaved) | p50 | p95 | p50 / floor | added p50 |",
        "|---|---|---|---|---|",
    ]
    for label, values in (
        ("straight to the job's port (floor)", direct),
        ("through the platform's proxy, endpoint a URL", proxied),
        ("through the proxy, endpoint a job id (a status lookup first)", by_id),
    ):
        median = statistics.median(values)
        rows.append(
            f"| {label} | {ms(median)} | {ms(percentile(values, 0.95))} |"
            f" {median / floor:.2f}x | {ms(median - floor)} |"
        )
    record("serving", "\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.requests))
