"""A job cache on the platform: a job's result is looked up by a key its job carries.

The key hashes what determines a job's result (image, entrypoint, command, environment,
volumes, anything the DAG adds, and the state of its input files on storage), not where
or how it runs (name, tags, life span, preset). A succeeded job with the key, young
enough and with its outputs still there, is the result; a live one with the key is
waited on instead of a second one being started.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import apolo_sdk

from airflow_neuro.client.identity import PREFIX
from airflow_neuro.client.neuro import NeuroClient
from airflow_neuro.client.summary import LIVE
from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.job_request import JobRequest

KEY_CHARS = 16
TAG_KEY = "cache"


def cache_tag(key: str) -> str:
    return f"{PREFIX}{TAG_KEY}:{key}"


def cache_job_name(key: str) -> str:
    """The name a cached job without one gets: two tasks that start the same job at the
    same moment collide on it, and the second waits on the first's job."""
    return f"cache-{key}"


def cache_key(
    request: JobRequest,
    extra: Any = None,
    ignore_env: Collection[str] = (),
    inputs: Iterable[tuple[str, int, int]] = (),
    where: str = "",
) -> str:
    """The key of a job's result: a hash of the fields that decide it, input files'
    ``(path, size, modification time)``, and ``where`` (the cluster, org and project:
    relative storage paths mean another place in another project)."""
    fields = {
        "where": where,
        "image": request.job_image,
        "entrypoint": request.job_entrypoint or None,
        "command": request.job_command,
        "env": {k: v for k, v in dict(request.job_environ).items() if k not in ignore_env},
        "volumes": [_volume(v) for v in request.job_volumes],
        "extra": extra,
        "inputs": sorted(inputs),
    }
    if request.job_working_dir:  # only when set, so keys made before it existed still match
        fields["working_dir"] = request.job_working_dir
    try:
        text = json.dumps(fields, sort_keys=True, default=_canonical)
    except TypeError as e:  # a mapping with keys that are not strings, say
        raise JobArgumentError("cache_key_extra", f"must be JSON-like data: {e}") from None
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]


def _volume(volume: object) -> str:
    """One spelling per volume: ``storage:a:/m`` and ``storage:a:/m:rw`` are the same."""
    if isinstance(volume, str):
        return volume if volume.count(":") == 3 else f"{volume}:rw"
    return repr(volume)


def _canonical(value: object) -> object:
    # A set's order depends on the process's hash seed: sorted, it keys the same everywhere.
    if isinstance(value, (set, frozenset)):
        return sorted(repr(item) for item in value)
    return repr(value)


@dataclass(frozen=True)
class CacheLookup:
    """What the platform holds for one key: a finished result, or a job still making it."""

    hit: apolo_sdk.JobDescription | None = None
    live: apolo_sdk.JobDescription | None = None
    # Why newer succeeded jobs with the key did not count, for the task log.
    passed_over: tuple[str, ...] = ()


class JobCache:
    """The cache side of a ``NeuroClient``."""

    def __init__(self, client: NeuroClient) -> None:
        self.client = client

    async def input_state(self, paths: Iterable[str]) -> list[tuple[str, int, int]]:
        """``(path, size, modification time)`` of each file, and of every file under each
        directory; a missing input is an error, not an empty state."""
        state: list[tuple[str, int, int]] = []
        for path in paths:
            uri = self.client.storage_uri(path)
            try:
                status = await self.client.stat(uri)
            except apolo_sdk.ResourceNotFound:
                raise JobArgumentError("cache_inputs", f"{uri} does not exist") from None
            if status.is_dir():
                state += await self._tree(uri, str(uri))
            else:
                state.append((str(uri), status.size, status.modification_time))
        return state

    async def _tree(self, uri: Any, prefix: str) -> list[tuple[str, int, int]]:
        async def listed() -> list[apolo_sdk.FileStatus]:
            async with self.client.sdk.storage.list(uri) as entries:
                return [entry async for entry in entries]

        found: list[tuple[str, int, int]] = []
        for entry in await self.client.retrying(listed, f"the listing of {uri}"):
            if entry.is_dir():
                found += await self._tree(uri / entry.name, prefix)
            else:
                found.append((str(uri / entry.name), entry.size, entry.modification_time))
        return found

    async def lookup(self, key: str, ttl: timedelta, outputs: Iterable[str]) -> CacheLookup:
        """The newest succeeded job with ``key`` that is younger than ``ttl`` and whose
        ``outputs`` all exist; else the newest live job with the key. Failed and cancelled
        jobs never count."""
        tag = cache_tag(key)
        passed_over: list[str] = []
        now = datetime.now(UTC)
        succeeded = await self.client.find_jobs([tag], [apolo_sdk.JobStatus.SUCCEEDED])
        # Listed by creation; the one that finished last is the freshest result.
        finished = sorted(
            ((job.history.finished_at, job) for job in succeeded if job.history.finished_at),
            key=lambda pair: pair[0],
            reverse=True,
        )
        if finished and now - finished[0][0] > ttl:
            newest, job = finished[0]
            passed_over.append(f"{job.id}: it finished {newest:%Y-%m-%d %H:%M} UTC, past the TTL")
        elif finished:
            job = finished[0][1]
            # Every job with the key wrote the same outputs: if one is gone, none can serve.
            missing = [path for path in outputs if not await self.client.exists(path)]
            if not missing:
                return CacheLookup(hit=job)
            passed_over.append(f"{job.id}: its output {missing[0]} is gone")
        live = await self.client.find_jobs([tag], LIVE)
        return CacheLookup(live=live[0] if live else None, passed_over=tuple(passed_over))
