"""The job life cycle: create, run as a local process, follow, cancel, end of life span."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import JobNameTaken, JobNotFound
from .hosts import HostsFile
from .logs import JobLog
from .process import JobProcess, launch
from .records import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED, Job
from .runner import CannotRun, plan_launch
from .runtimes import choose_runtime
from .settings import Settings
from .storage_paths import StoragePaths
from .store import JobStore

log = logging.getLogger(__name__)

STOPPED_REASON = "PlatformStopped"
STOPPED_DESCRIPTION = "The local platform stopped while the job was live"


@dataclass
class _Run:
    job: Job
    log: JobLog
    process: JobProcess | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class JobService:
    def __init__(self, settings: Settings, store: JobStore, storage: StoragePaths) -> None:
        self._settings = settings
        self._store = store
        self._storage = storage
        self._hosts = HostsFile(settings.hosts_path)
        self._runs: dict[str, _Run] = {}

    # -- start-up and shut-down ---------------------------------------------------------
    def recover(self) -> None:
        """Jobs that were live when the platform last stopped cannot have gone on running."""
        for job in self._store.live():
            job.transition(FAILED, STOPPED_REASON, STOPPED_DESCRIPTION)
            self._store.save(job)
        self._update_hosts()  # nothing is live yet: this drops the last run's jobs

    async def shutdown(self) -> None:
        runs = list(self._runs.values())
        for run in runs:
            self._finish(run.job, FAILED, STOPPED_REASON, STOPPED_DESCRIPTION)
            self._signal(run, signal.SIGKILL)
        tasks = [t for run in runs for t in run.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    # -- queries ------------------------------------------------------------------------
    def get(self, id_or_name: str, owner: str) -> Job:
        run = self._runs.get(id_or_name)
        if run is not None:
            return run.job
        job = self._store.get(id_or_name) or self._newest_named(id_or_name, owner)
        if job is None:
            raise JobNotFound(f"no such job {id_or_name}")
        return job

    def named(self, name: str, owner: str) -> Job:
        job = self._newest_named(name, owner)
        if job is None:
            raise JobNotFound(f"no such job {name}")
        return job

    def _newest_named(self, name: str, owner: str) -> Job | None:
        """The newest live job of that name, else the newest job that ever had it."""
        live = [j for j in self._live() if j.name == name and j.owner == owner]
        if live:
            return max(live, key=lambda j: j.created_at)
        return self._store.newest_by_name(name, owner)

    def _live(self) -> list[Job]:
        return [run.job for run in self._runs.values() if run.job.is_live]

    def query(
        self,
        *,
        statuses: list[str],
        name: str | None,
        tags: list[str],
        owners: list[str],
        projects: list[str],
        since: datetime | None,
        until: datetime | None,
        reverse: bool,
        limit: int | None,
    ) -> Iterator[Job]:
        count = 0
        wanted = set(tags)
        for job in self._store.query(statuses=statuses, name=name, owners=owners,
                                     projects=projects, since=since, until=until,
                                     reverse=reverse):  # fmt: skip
            if limit is not None and count >= limit:
                return
            if wanted <= set(job.tags):
                count += 1
                run = self._runs.get(job.id)
                yield run.job if run is not None else job

    def log(self, id_or_name: str, owner: str) -> JobLog:
        job = self.get(id_or_name, owner)
        run = self._runs.get(job.id)
        if run is not None:
            return run.log
        return JobLog(self._settings.jobs_dir / job.id, finished=True)

    # -- commands -----------------------------------------------------------------------
    def create(self, job: Job) -> Job:
        if job.name is not None:
            for run in self._runs.values():
                other = run.job
                # A cancelled job's process may still be ending, but its name is free.
                live = other.is_live
                if live and other.name == job.name and other.project_name == job.project_name:
                    raise JobNameTaken(
                        f"Failed to create job: job with name '{job.name}' and project "
                        f"'{job.project_name}' already exists: '{other.id}'"
                    )
        job.transition(PENDING, "Creating")
        self._store.save(job)
        run = _Run(job, JobLog(self._settings.jobs_dir / job.id, finished=False))
        self._runs[job.id] = run
        self._update_hosts()  # before its process starts: it may call itself by name
        self._spawn(run, self._run(run))
        return job

    def cancel(self, id_or_name: str, owner: str, reason: str = "UserRequested") -> None:
        job = self.get(id_or_name, owner)
        run = self._runs.get(job.id)
        if run is None or not job.is_live:
            return  # finished jobs stay as they ended
        # The status changes at once, as on the real platform; the process is ended after.
        self._finish(job, CANCELLED, reason)
        self._spawn(run, self._terminate(run))

    def bump_life_span(self, id_or_name: str, owner: str, minutes: int) -> None:
        job = self.get(id_or_name, owner)
        if job.is_live and job.max_run_time_minutes is not None:
            job.max_run_time_minutes += minutes
            self._store.save(job)

    # -- running ------------------------------------------------------------------------
    def _spawn(self, run: _Run, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        run.tasks.add(task)
        task.add_done_callback(run.tasks.discard)

    def _finish(
        self,
        job: Job,
        status: str,
        reason: str | None = None,
        description: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        if job.is_live:
            job.transition(status, reason, description, exit_code)
            self._store.save(job)
            self._update_hosts()

    def _update_hosts(self) -> None:
        try:
            self._hosts.write(self._live())
        except OSError:
            # Never worth failing a job or a cancel for: a stale line names loopback anyway.
            log.exception("cannot update the jobs' hosts file %s", self._hosts.path)

    async def _run(self, run: _Run) -> None:
        job = run.job
        try:
            await self._execute(run)
        except CannotRun as e:
            self._finish(job, FAILED, "ContainerCannotRun", str(e), e.exit_code)
        except Exception as e:  # a bug here must not leave the job pending forever
            log.exception("job %s failed to run", job.id)
            self._finish(job, FAILED, "ContainerCannotRun", f"local platform error: {e}", 128)
        finally:
            run.log.finish()
            self._runs.pop(job.id, None)

    async def _execute(self, run: _Run) -> None:
        job = run.job
        workdir = self._settings.jobs_dir / job.id / "home"
        workdir.mkdir(parents=True, exist_ok=True)
        job.transition(PENDING, "ContainerCreating")
        self._store.save(job)
        sources = []
        for volume in job.volumes:
            try:
                source = self._storage.local_path(volume.src_storage_uri)
            except ValueError as e:
                raise CannotRun(f"volume {volume.src_storage_uri}: {e}") from None
            source.mkdir(parents=True, exist_ok=True)
            sources.append(source)
        runtime = choose_runtime(self._settings.runtimes, job.image)
        plan = plan_launch(job, workdir, sources, self._hosts.path, runtime)
        await self._port_released(job)
        if not job.is_live:
            return  # cancelled while it was being created
        process = await launch(plan)
        run.process = process
        if not job.is_live:
            self._signal(run, signal.SIGKILL)
        else:
            # Which programs the job got, a runtime's or the host's, is the first thing to
            # know of a job that does not behave as its image would: the record tells.
            job.transition(RUNNING, description=runtime.description)
            self._store.save(job)
            if job.max_run_time_minutes is not None:
                self._spawn(run, self._enforce_life_span(run))
        pump = asyncio.ensure_future(run.log.pump(process.stdout))
        exit_code = await process.wait()
        # A container ends with its main process: so do the processes it left behind.
        self._signal(run, signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), timeout=5)
        if not pump.done():
            pump.cancel()
        if exit_code == 0:
            self._finish(job, SUCCEEDED, exit_code=0)
        else:
            self._finish(job, FAILED, "Error", None, exit_code)

    async def _port_released(self, job: Job) -> None:
        """Jobs share the machine's network, so a job that replaces a cancelled one on the
        same port waits for the old process to end (within its kill grace), as a new
        container would find the port free once the old one has stopped."""
        ending = [
            run.process
            for run in self._runs.values()
            if run.job is not job and not run.job.is_live and run.process is not None
            and job.http_port is not None and run.job.http_port == job.http_port
        ]  # fmt: skip
        if ending:
            waits = [asyncio.ensure_future(process.wait()) for process in ending]
            await asyncio.wait(waits, timeout=self._settings.kill_grace_seconds + 1)
            for wait in waits:
                wait.cancel()

    def _signal(self, run: _Run, signum: int) -> None:
        if run.process is not None:
            run.process.signal(signum)

    async def _terminate(self, run: _Run) -> None:
        self._signal(run, signal.SIGTERM)
        process = run.process
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), self._settings.kill_grace_seconds)
        except TimeoutError:
            self._signal(run, signal.SIGKILL)

    async def _enforce_life_span(self, run: _Run) -> None:
        job = run.job
        loop = asyncio.get_running_loop()
        start = loop.time()
        while job.is_live and job.max_run_time_minutes is not None:
            deadline = start + job.max_run_time_minutes * self._settings.minute_seconds
            if loop.time() >= deadline:
                self.cancel(job.id, job.owner, "LifeSpanEnded")
                return
            await asyncio.sleep(min(deadline - loop.time(), 1.0))
