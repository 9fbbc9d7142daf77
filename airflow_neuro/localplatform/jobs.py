"""The job life cycle: create, run as a local process, follow, cancel, end of life span."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import signal
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import JobNameTaken, JobNotFound
from .hosts import HostsFile
from .logs import JobLog
from .process import JobProcess, launch
from .records import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED, Job
from .runner import CannotRun, plan_launch
from .runtimes import choose_runtime
from .sandbox import JobUser
from .settings import Settings
from .storage_paths import StoragePaths
from .store import JobStore

log = logging.getLogger(__name__)

STOPPED_REASON = "PlatformStopped"
STOPPED_DESCRIPTION = "The local platform stopped while the job was live"
LOST_DESCRIPTION = (
    "The job's processes ended while the local platform was down, and left no exit code"
)
# How often running jobs' log files are looked at for new output: the delay a follower of
# a live log sees, at one fstat per running job per look.
LOG_POLL_SECONDS = 0.05
# How long a stop that keeps jobs waits for the ones being started to be on record.
LAUNCH_GRACE_SECONDS = 10.0


def job_user(settings: Settings) -> JobUser | None:
    """Jobs never run as root: a root platform runs them as ``settings.job_user``."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(settings.job_user)
    except KeyError:
        raise ValueError(f"job user {settings.job_user!r} does not exist on this machine") from None
    if entry.pw_uid == 0:
        raise ValueError(f"job user {settings.job_user!r} is root: jobs need an unprivileged user")
    return JobUser(entry.pw_uid, entry.pw_gid)


@dataclass
class _Run:
    job: Job
    log: JobLog
    process: JobProcess | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # From the sandbox's start to its processes' record: a stop must not cut in there, or a
    # job would run with nothing to find it by.
    launching: asyncio.Future[JobProcess] | None = None


class JobService:
    def __init__(
        self, settings: Settings, store: JobStore, storage: StoragePaths, user: JobUser | None
    ) -> None:
        self._settings = settings
        self._store = store
        self._storage = storage
        self._hosts = HostsFile(settings.hosts_path)
        self._runs: dict[str, _Run] = {}
        self._user = user
        self._follower: asyncio.Task[None] | None = None

    # -- start-up and shut-down ---------------------------------------------------------
    async def start(self) -> None:
        """Pick up the jobs a previous platform on this data dir left live: those still
        running are followed again, those that ended meanwhile get their exit code."""
        for job in self._store.live():
            process = JobProcess.find(self._job_dir(job.id))
            if process is None:  # it never started
                job.transition(FAILED, STOPPED_REASON, STOPPED_DESCRIPTION)
                self._store.save(job)
                continue
            if job.status == PENDING:  # started just before the platform stopped
                job.transition(RUNNING)
                self._store.save(job)
            run = _Run(job, JobLog(self._job_dir(job.id), finished=False), process)
            self._runs[job.id] = run
            self._spawn(run, self._supervised(run, self._follow(run)))
        self._update_hosts()  # live jobs only: this drops the ones that ended meanwhile
        self._follower = asyncio.ensure_future(self._follow_logs())

    async def shutdown(self) -> None:
        runs = list(self._runs.values())
        if self._settings.keep_jobs_on_stop:
            launching = [run.launching for run in runs if run.launching is not None]
            if launching:
                await asyncio.wait(launching, timeout=LAUNCH_GRACE_SECONDS)
            live = [run for run in runs if run.job.is_live]
            if live:
                log.warning(
                    "%d job(s) go on running; a platform started on %s picks them up",
                    len(live), self._settings.data_dir,
                )  # fmt: skip
            for run in runs:
                for task in run.tasks:
                    task.cancel()
                run.log.detach()
        else:
            for run in runs:
                self._finish(run.job, FAILED, STOPPED_REASON, STOPPED_DESCRIPTION)
                self._signal(run, signal.SIGKILL)
        tasks = [t for run in runs for t in run.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    async def _follow_logs(self) -> None:
        while True:
            now = time.time()
            for run in list(self._runs.values()):
                if run.process is not None:
                    run.log.poll(now)
            await asyncio.sleep(LOG_POLL_SECONDS)

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
        return JobLog(self._job_dir(job.id), finished=True)

    def pid_namespace(self, job_id: str) -> int | None:
        """The job's PID namespace (its inode number) while the job is live: the proxy asks
        whether it is the job's own processes that listen on its port."""
        run = self._runs.get(job_id)
        if run is None or run.process is None or not run.job.is_live:
            return None
        return run.process.pid_namespace or None

    def _job_dir(self, job_id: str) -> Path:
        return self._settings.jobs_dir / job_id

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
        run = _Run(job, JobLog(self._job_dir(job.id), finished=False))
        self._runs[job.id] = run
        self._update_hosts()  # before its process starts: it may call itself by name
        self._spawn(run, self._supervised(run, self._execute(run)))
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

    async def _supervised(self, run: _Run, work: Coroutine[Any, Any, None]) -> None:
        job = run.job
        try:
            await work
        except CannotRun as e:
            self._finish(job, FAILED, "ContainerCannotRun", str(e), e.exit_code)
        except asyncio.CancelledError:
            raise  # the platform stops and leaves the job running: nothing to record
        except Exception as e:  # a bug here must not leave the job pending forever
            log.exception("job %s failed to run", job.id)
            self._finish(job, FAILED, "ContainerCannotRun", f"local platform error: {e}", 128)
            self._signal(run, signal.SIGKILL)
        run.log.finish()
        self._runs.pop(job.id, None)

    async def _execute(self, run: _Run) -> None:
        job = run.job
        directory = self._job_dir(job.id)
        workdir = directory / "home"
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._give(workdir)
        job.transition(PENDING, "ContainerCreating")
        self._store.save(job)
        with contextlib.ExitStack() as pinned:
            # Each volume's directory held open from its check to its mount: a job that
            # swaps a storage directory for a symlink cannot redirect a later job's volume.
            sources = []
            for volume in job.volumes:
                try:
                    source = self._storage.pin_dir(volume.src_storage_uri)
                except ValueError as e:
                    raise CannotRun(f"volume {volume.src_storage_uri}: {e}") from None
                sources.append(pinned.enter_context(source))
            runtime = choose_runtime(self._settings.runtimes, job.image)
            plan = plan_launch(job, workdir, sources, self._hosts.path, runtime,
                               hidden=self._settings.data_dir, user=self._user)  # fmt: skip
            await self._port_released(job)
            if not job.is_live:
                return  # cancelled while it was being created
            run.launching = asyncio.ensure_future(launch(plan, directory, run.log.path))
            try:
                run.process = await asyncio.shield(run.launching)
            finally:
                run.launching = None
        if not job.is_live:
            self._signal(run, signal.SIGKILL)
        else:
            # Which programs the job got, a runtime's or the host's, is the first thing to
            # know of a job that does not behave as its image would: the record tells.
            job.transition(RUNNING, description=runtime.description)
            self._store.save(job)
        await self._follow(run)

    async def _follow(self, run: _Run) -> None:
        """Until the job's main process ends, then record how it ended."""
        job, process = run.job, run.process
        if process is None:
            return
        if job.is_live and job.max_run_time_minutes is not None:
            self._spawn(run, self._enforce_life_span(run))
        exit_code = await process.wait()
        # A container ends with its main process: so do the processes it left behind.
        self._signal(run, signal.SIGKILL)
        if exit_code is None:
            self._finish(job, FAILED, STOPPED_REASON, LOST_DESCRIPTION)
        elif exit_code == 0:
            self._finish(job, SUCCEEDED, exit_code=0)
        else:
            self._finish(job, FAILED, "Error", None, exit_code)

    def _give(self, path: Path) -> None:
        """Jobs run as their own user when the platform is root: let them write here."""
        if self._user is not None:
            os.chown(path, self._user.uid, self._user.gid, follow_symlinks=False)

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
        # From the job's start as recorded, so that a restarted platform keeps the deadline.
        job = run.job
        start = (job.started_at or job.created_at).timestamp()
        while job.is_live and job.max_run_time_minutes is not None:
            deadline = start + job.max_run_time_minutes * self._settings.minute_seconds
            if time.time() >= deadline:
                self.cancel(job.id, job.owner, "LifeSpanEnded")
                return
            await asyncio.sleep(min(deadline - time.time(), 1.0))
