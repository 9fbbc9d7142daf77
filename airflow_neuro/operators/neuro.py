"""NeuroRunOperator: run a job on the Neu.ro / Apolo platform as an Airflow task."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import apolo_sdk
from airflow.sdk import BaseOperator

from airflow_neuro.arguments import check_flags, check_number
from airflow_neuro.client import (
    FINISHED,
    LIVE,
    STARTED,
    JobSummary,
    NeuroConnectionParams,
    TaskIdentity,
    cancel_job,
)
from airflow_neuro.client.cache import JobCache, cache_job_name, cache_key, cache_tag
from airflow_neuro.compat import conf
from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.job_request import JobRequest, check_tags
from airflow_neuro.links.neuro import JOB_INFO_KEY, JOB_PAGE_KEY, NeuroJobHttpLink, NeuroJobLink
from airflow_neuro.triggers.events import JobEvent
from airflow_neuro.triggers.neuro import NeuroJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

TRIGGER_FAIL = "__fail__"  # what Airflow resumes a deferred task with when it timed out
CACHE_MODES = ("reuse", "refresh")


class NeuroRunOperator(BaseOperator):
    """Run a job on the Neu.ro / Apolo platform.

    :param job_command: the command to run in the job's container.
    :param job_image: a public image name (``ubuntu:22.04``) or a platform ``image://`` URI.
    :param job_volumes: ``storage:PATH:/MOUNT[:ro|rw]`` strings or ``apolo_sdk.Volume``\\ s.
    :param job_name: a job name (3-40 characters; two live jobs cannot share one).
    :param job_resources_preset: a preset of the cluster; none (and no ``job_resources``)
        means the cluster's default preset.
    :param job_resources: custom ``apolo_sdk.Resources`` instead of a preset.
    :param job_is_preemptible: kept for compatibility; the platform now picks preemptible
        nodes through presets.
    :param job_extshm: extended ``/dev/shm`` (with a preset).
    :param job_tags: tags for the job, besides the ones that identify this task.
    :param job_description: free text.
    :param job_lifespan: the job's run-time limit, in seconds (whole minutes, at least 60).
    :param job_environ: environment variables (values are templated, keys are not).
    :param job_entrypoint: overrides the image's entrypoint.
    :param job_http_port: a container port to expose over HTTP.
    :param job_http_auth: whether the exposed port requires platform authentication.
    :param job_tty: allocate a TTY.
    :param job_working_dir: the directory the command starts in (default: the image's).
    :param job_schedule_timeout: seconds the job may wait for resources before it fails.
    :param job_restart_policy: ``"never"``, ``"on-failure"`` or ``"always"``.
    :param job_pass_config: give the job the platform config (the connection's token), so
        that it can call the platform itself (``apolo cp`` inside the job, say).
    :param job_detach: return once the job has started (``True``), or stream its log into the
        task log and wait for it to end (``False``).
    :param raise_on_errno: fail the task when the job exits with a non-zero code.
    :param neuro_conn_id: the ``neuro`` connection.
    :param poll_interval: the longest wait between two status checks, in seconds.
    :param deferrable: wait in the triggerer instead of holding a worker slot (default:
        ``[operators] default_deferrable``).
    :param reattach_on_restart: on a retry or after a crashed worker, take over a live job
        that an earlier try of this task instance started instead of starting another.
    :param reuse_finished_job: also take the result of a job an earlier try finished.
    :param cancel_on_kill: cancel the job when the task is killed or times out.
    :param retry_budget: seconds to ride out a platform outage (connection errors, 502,
        503, 504) before failing the task.
    :param cache: take the result of a succeeded job with the same cache key instead of
        running again, and wait on a live one instead of starting a second.
    :param cache_ttl: how long a result counts (a ``timedelta`` or seconds; 14 days).
    :param cache_mode: ``"reuse"``, or ``"refresh"``: run anyway and become the entry
        later runs reuse.
    :param cache_key_extra: anything else that should split the cache (templated).
    :param cache_inputs: storage paths whose files' size and modification time join the key
        (templated).
    :param cache_outputs: storage paths that must still exist for a result to count
        (templated).
    :param cache_ignore_env: environment variable names left out of the key (say, a run id).
    """

    template_fields: Sequence[str] = (
        "job_command",
        "job_image",
        "job_volumes",
        "job_name",
        "job_resources_preset",
        "job_tags",
        "job_environ",
        "job_entrypoint",
        "job_description",
        "job_http_port",
        "job_working_dir",
        "neuro_conn_id",
        "cache_key_extra",
        "cache_inputs",
        "cache_outputs",
    )
    template_fields_renderers = {"job_environ": "json", "job_command": "bash"}
    operator_extra_links = (NeuroJobLink(), NeuroJobHttpLink())
    ui_color = "#e3f1fb"

    def __init__(
        self,
        job_command: str,
        job_image: str,
        *,
        job_volumes: Sequence[str | apolo_sdk.Volume] = (),
        job_name: str | None = None,
        job_resources_preset: str | None = None,
        job_resources: apolo_sdk.Resources | None = None,
        job_is_preemptible: bool = False,
        job_extshm: bool = True,
        job_tags: Sequence[str] = (),
        job_description: str | None = None,
        job_lifespan: float | None = None,
        job_environ: Mapping[str, str] | None = None,
        job_entrypoint: str | None = None,
        job_http_port: int | str | None = None,
        job_http_auth: bool = True,
        job_tty: bool = False,
        job_working_dir: str | None = None,
        job_schedule_timeout: float | None = None,
        job_restart_policy: str = "never",
        job_pass_config: bool = False,
        job_detach: bool = True,
        raise_on_errno: bool = True,
        neuro_conn_id: str = NeuroHook.default_conn_name,
        poll_interval: float = 10.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        reattach_on_restart: bool = True,
        reuse_finished_job: bool = False,
        cancel_on_kill: bool = True,
        retry_budget: float = 300.0,
        cache: bool = False,
        cache_ttl: timedelta | float = timedelta(days=14),
        cache_mode: str = "reuse",
        cache_key_extra: Any = None,
        cache_inputs: Sequence[str] = (),
        cache_outputs: Sequence[str] = (),
        cache_ignore_env: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_command = job_command
        self.job_image = job_image
        # Kept as given: a string here is a mistake to report (after templating, which may
        # still turn it into a list), never a list of its characters.
        self.job_volumes = job_volumes
        self.job_name = job_name
        self.job_resources_preset = job_resources_preset
        self.job_resources = job_resources
        self.job_is_preemptible = job_is_preemptible
        self.job_extshm = job_extshm
        self.job_tags = job_tags
        self.job_description = job_description
        self.job_lifespan = job_lifespan
        self.job_environ = {} if job_environ is None else job_environ
        self.job_entrypoint = job_entrypoint
        self.job_http_port = job_http_port
        self.job_http_auth = job_http_auth
        self.job_tty = job_tty
        self.job_working_dir = job_working_dir
        self.job_schedule_timeout = job_schedule_timeout
        self.job_restart_policy = job_restart_policy
        self.job_pass_config = job_pass_config
        self.job_detach = job_detach
        self.raise_on_errno = raise_on_errno
        self.neuro_conn_id = neuro_conn_id
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.reattach_on_restart = reattach_on_restart
        self.reuse_finished_job = reuse_finished_job
        self.cancel_on_kill = cancel_on_kill
        self.retry_budget = retry_budget
        self.cache = cache
        self.cache_ttl = _ttl(cache_ttl)
        if cache_mode not in CACHE_MODES:
            raise JobArgumentError(
                "cache_mode", f"must be one of {CACHE_MODES}, got {cache_mode!r}"
            )
        self.cache_mode = cache_mode
        self.cache_key_extra = cache_key_extra
        self.cache_inputs = _paths("cache_inputs", cache_inputs)
        self.cache_outputs = _paths("cache_outputs", cache_outputs)
        self.cache_ignore_env = _paths("cache_ignore_env", cache_ignore_env)
        self.job_id: str | None = None
        # Whether this task instance started the job it waits on: only such a job is
        # cancelled when the task is killed, never one it attached to.
        self._ours = False
        self._fallbacks = 0  # times it ran its own job after a job it waited on failed
        self._conn_params: NeuroConnectionParams | None = None
        # What is not templated is final here: a mistake in it fails the DAG file at once.
        check_flags([
            ("job_is_preemptible", job_is_preemptible),
            ("job_detach", job_detach),
            ("raise_on_errno", raise_on_errno),
            ("deferrable", deferrable),
            ("reattach_on_restart", reattach_on_restart),
            ("reuse_finished_job", reuse_finished_job),
            ("cancel_on_kill", cancel_on_kill),
            ("cache", cache),
        ])  # fmt: skip
        check_number("poll_interval", poll_interval)
        check_number("retry_budget", retry_budget, inclusive=True)
        # This class's own request: a subclass's may read files or the platform first.
        NeuroRunOperator.job_request(self).check_fixed()

    def job_request(self) -> JobRequest:
        return JobRequest(
            job_command=self.job_command,
            job_image=self.job_image,
            job_volumes=self.job_volumes,
            job_name=self.job_name,
            job_resources_preset=self.job_resources_preset,
            job_resources=self.job_resources,
            job_extshm=self.job_extshm,
            job_tags=self.job_tags,
            job_description=self.job_description,
            job_lifespan=self.job_lifespan,
            job_environ=self.job_environ,
            job_entrypoint=self.job_entrypoint,
            job_http_port=self.job_http_port,
            job_http_auth=self.job_http_auth,
            job_tty=self.job_tty,
            job_working_dir=self.job_working_dir,
            job_schedule_timeout=self.job_schedule_timeout,
            job_restart_policy=self.job_restart_policy,
            job_pass_config=self.job_pass_config,
        )

    def resolve_request(self, hook: NeuroHook, request: JobRequest) -> JobRequest:
        """The request once connected: for subclasses whose job depends on the platform's
        config (the user name, say). A new one is checked again before any job exists."""
        return request

    def _check(self, request: JobRequest, identity: TaskIdentity) -> None:
        request.check(identity.tags)
        if self.cache:
            check_tags("job_tags", request.job_tags, reserved=len(identity.tags) + 1)
            _paths("cache_inputs", self.cache_inputs)
            _paths("cache_outputs", self.cache_outputs)

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        identity = TaskIdentity.of(ti)
        request = self.job_request()
        self._check(request, identity)  # before any connection is made
        if self.job_is_preemptible and self.job_resources is not None:
            self.log.warning(
                "job_is_preemptible is ignored: the platform chooses preemptible nodes by preset"
            )
        with NeuroHook(self.neuro_conn_id, retry_budget=self.retry_budget) as hook:
            self._conn_params = hook.params
            resolved = self.resolve_request(hook, request)
            if resolved is not request:
                self._check(resolved, identity)
                request = resolved
            job = self._earlier_job(hook, identity)
            adopt = None
            if job is None and self.cache:
                key = self._cache_key(hook, request)
                request = dataclasses.replace(request, job_tags=[*request.job_tags, cache_tag(key)])
                if self.cache_mode == "reuse":
                    adopt = cache_tag(key)
                    # Named after the key, two tasks starting the same work at once collide,
                    # and the second takes the first one's job (submit_job's adopt_tag).
                    request = dataclasses.replace(
                        request, job_name=request.job_name or cache_job_name(key)
                    )
                    found = self._from_cache(hook, ti, key)
                    if isinstance(found, dict):
                        return found
                    job = found
            if job is None:
                job = hook.submit_job(request, identity, adopt)
                if identity.started(job.tags):
                    self.log.info("Started job %s (%s)", job.id, job.status.value)
                else:  # another task started the same cached work a moment before
                    self._log_waiting(job.id, adopt)
            self._ours = identity.started(job.tags)
            self._publish(ti, hook, job)
            wanted = STARTED if self.job_detach else FINISHED
            if self.deferrable and job.status not in wanted:
                self._defer(job.id, wanted)
            try:
                if not self.job_detach:
                    for line in hook.iter_job_log(job.id):
                        self.log.info("%s", line)
                job = hook.wait_for_job(job.id, wanted, self.poll_interval)
            except BaseException:
                # Killed, timed out or broken: do not leave the job running and billing.
                self.on_kill()
                raise
        return self._finish_or_run_again(context, JobSummary.of(job), self._ours, self._fallbacks)

    def _finish_or_run_again(
        self, context: Context, job: JobSummary, ours: bool, fallbacks: int = 0
    ) -> dict[str, Any]:
        """A cached job another task started, that failed or was cancelled, is not this
        task's result: failed jobs never count, so it looks again and runs its own."""
        gave_up = job.status in (
            apolo_sdk.JobStatus.FAILED.value,
            apolo_sdk.JobStatus.CANCELLED.value,
        )
        if self.cache and not ours and gave_up and fallbacks < 1:
            self.log.warning("Job %s, which this task waited on, is %s; running it here", job.id,
                             job.status)  # fmt: skip
            self._fallbacks = fallbacks + 1
            return self.execute(context)
        return self._finish(job)

    def _cache_key(self, hook: NeuroHook, request: JobRequest) -> str:
        inputs = hook.run(JobCache(hook.async_client).input_state(self.cache_inputs))
        config = hook.client.config
        where = f"{config.cluster_name}/{config.org_name}/{config.project_name}"
        return cache_key(request, self.cache_key_extra, self.cache_ignore_env, inputs, where)

    def _from_cache(
        self, hook: NeuroHook, ti: Any, key: str
    ) -> dict[str, Any] | apolo_sdk.JobDescription | None:
        """A cached result's XCom, a live job making it, or None: start one."""
        found = hook.run(
            JobCache(hook.async_client).lookup(key, self.cache_ttl, self.cache_outputs)
        )
        for reason in found.passed_over:
            self.log.info("Cache key %s: not reusing %s", key, reason)
        if found.hit is not None:
            job = found.hit
            finished = job.history.finished_at
            self.log.info(
                "Cache hit for key %s: job %s succeeded at %s; its result is this task's,"
                " no new job",
                key, job.id, f"{finished:%Y-%m-%d %H:%M:%S} UTC" if finished else "?",
            )  # fmt: skip
            self._publish(ti, hook, job)
            return {**JobSummary.of(job).xcom(), "cached": True, "cached_from": job.id}
        if found.live is not None:
            self._log_waiting(found.live.id, cache_tag(key))
        return found.live

    def _log_waiting(self, job_id: str, tag: str | None) -> None:
        self.log.info("Cache %s: job %s is making this result now; waiting on it", tag, job_id)

    def _publish(self, ti: Any, hook: NeuroHook, job: apolo_sdk.JobDescription) -> None:
        """Remember the job, and show it in the task's links as soon as it exists."""
        self.job_id = job.id
        ti.xcom_push(key=JOB_INFO_KEY, value=JobSummary.of(job).xcom())
        ti.xcom_push(key=JOB_PAGE_KEY, value=hook.job_page_url(job.id))

    def _defer(self, job_id: str, wanted: frozenset[apolo_sdk.JobStatus]) -> None:
        self.defer(
            trigger=NeuroJobTrigger(
                job_id=job_id,
                neuro_conn_id=self.neuro_conn_id,
                statuses=sorted(s.value for s in wanted),
                poll_interval=self.poll_interval,
                follow_log=not self.job_detach,
                cancel_on_kill=self.cancel_on_kill and self._ours,
                retry_budget=self.retry_budget,
            ),
            method_name="execute_complete",
            kwargs={"ours": self._ours, "fallbacks": self._fallbacks},
            timeout=self.execution_timeout,
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any], ours: bool = True, fallbacks: int = 0
    ) -> dict[str, Any]:
        """Resume after the trigger fired: the same checks and XCom as a task that waited."""
        job = JobEvent.from_json(event).job_or_raise()
        return self._finish_or_run_again(context, job, ours, fallbacks)

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context
    ) -> Any:
        if next_method == TRIGGER_FAIL and self.cancel_on_kill:
            # The deferred wait timed out or failed: the job must not outlive the task.
            assigned = context["ti"].xcom_pull(task_ids=self.task_id, key=JOB_INFO_KEY)
            if (
                isinstance(assigned, dict)
                and assigned.get("id")
                and self._owns(context, assigned["id"])
            ):
                self.job_id = assigned["id"]
                self._cancel()
        return super().resume_execution(next_method, next_kwargs, context)

    def _owns(self, context: Context, job_id: str) -> bool:
        """Whether some try of this task instance started the job: only then may it cancel
        it, never a job it attached to (a cached one, a reused service)."""
        try:
            with NeuroHook(self.neuro_conn_id, retry_budget=30.0) as hook:
                return TaskIdentity.of(context["ti"]).started(hook.get_job(job_id).tags)
        except Exception as e:  # the timeout is what the task reports
            self.log.error("Could not tell who started job %s, so it is left running: %s",
                           job_id, e)  # fmt: skip
            return False

    def _finish(self, job: JobSummary) -> dict[str, Any]:
        job.check_outcome(self.raise_on_errno)
        self.log.info("Job %s is %s (exit code %s)", job.id, job.status, job.exit_code)
        return job.xcom()

    def _earlier_job(
        self, hook: NeuroHook, identity: TaskIdentity
    ) -> apolo_sdk.JobDescription | None:
        """A job an earlier try of this task instance started, when it should be taken over."""
        if not self.reattach_on_restart:
            return None
        live = hook.find_jobs(identity.instance_tags, LIVE)
        if live:
            self.log.info("Reattaching to live job %s started by an earlier try", live[0].id)
            return live[0]
        if self.reuse_finished_job:
            done = hook.find_jobs(identity.instance_tags, [apolo_sdk.JobStatus.SUCCEEDED])
            if done:
                self.log.info("Reusing job %s that an earlier try ran to success", done[0].id)
                return done[0]
        return None

    def _cancel(self) -> None:
        """Cancel the job from wherever this runs: a signal handler may interrupt the hook's
        own loop, so the cancel gets a thread, a loop and a login of its own."""
        job_id = self.job_id
        if job_id is None:
            return
        params = self._conn_params or NeuroHook(self.neuro_conn_id).connection_params()
        failure: list[BaseException] = []

        def cancel() -> None:
            try:
                asyncio.run(cancel_job(params, job_id))
            except BaseException as e:
                failure.append(e)

        worker = threading.Thread(target=cancel, name=f"cancel-{job_id}", daemon=True)
        worker.start()
        worker.join(60)
        if failure or worker.is_alive():
            self.log.error("Could not cancel job %s: %s", job_id, failure or "timed out")
        else:
            self.log.info("Cancelled job %s", job_id)

    def on_kill(self) -> None:
        if self.cancel_on_kill and self._ours:
            self._cancel()


def _ttl(value: timedelta | float) -> timedelta:
    ttl = value if isinstance(value, timedelta) else None
    if ttl is None and isinstance(value, (int, float)) and not isinstance(value, bool):
        ttl = timedelta(seconds=value)
    if ttl is None or ttl <= timedelta(0):
        raise JobArgumentError(
            "cache_ttl", f"must be a positive timedelta or seconds, got {value!r}"
        )
    return ttl


def _paths(argument: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise JobArgumentError(argument, f"must be a list of strings, got {value!r}")
    if not all(isinstance(item, str) and item for item in value):
        raise JobArgumentError(argument, f"must be a list of non-empty strings, got {value!r}")
    return list(value)
