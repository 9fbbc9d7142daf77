"""NeuroRunOperator: run a job on the Neu.ro / Apolo platform as an Airflow task."""

from __future__ import annotations

import codecs
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import apolo_sdk
from airflow.sdk import BaseOperator

from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.job_request import JobArgumentError, JobRequest
from airflow_neuro.links.neuro import JOB_INFO_KEY, JOB_PAGE_KEY, NeuroJobHttpLink, NeuroJobLink
from airflow_neuro.utils.job_info import check_outcome, job_info
from airflow_neuro.utils.task_tags import task_instance_tags

if TYPE_CHECKING:
    from airflow.sdk import Context

FINISHED = frozenset(s for s in apolo_sdk.JobStatus if s.is_finished)
STARTED = FINISHED | {apolo_sdk.JobStatus.RUNNING}


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
    :param job_detach: return once the job has started (``True``), or stream its log into the
        task log and wait for it to end (``False``).
    :param raise_on_errno: fail the task when the job exits with a non-zero code.
    :param neuro_conn_id: the ``neuro`` connection.
    :param poll_interval: the longest wait between two status checks, in seconds.
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
        "neuro_conn_id",
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
        job_detach: bool = True,
        raise_on_errno: bool = True,
        neuro_conn_id: str = NeuroHook.default_conn_name,
        poll_interval: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_command = job_command
        self.job_image = job_image
        self.job_volumes = list(job_volumes)
        self.job_name = job_name
        self.job_resources_preset = job_resources_preset
        self.job_resources = job_resources
        self.job_is_preemptible = job_is_preemptible
        self.job_extshm = job_extshm
        self.job_tags = list(job_tags)
        self.job_description = job_description
        self.job_lifespan = job_lifespan
        self.job_environ = dict(job_environ or {})
        self.job_entrypoint = job_entrypoint
        self.job_http_port = job_http_port
        self.job_http_auth = job_http_auth
        self.job_tty = job_tty
        self.job_detach = job_detach
        self.raise_on_errno = raise_on_errno
        self.neuro_conn_id = neuro_conn_id
        self.poll_interval = poll_interval
        self.job_id: str | None = None
        if job_resources_preset is not None and job_resources is not None:
            raise JobArgumentError(
                "job_resources_preset", "give a preset or job_resources, not both"
            )

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
        )

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        identity = task_instance_tags(ti)
        request = self.job_request()
        request.check(identity)  # before any connection is made
        if self.job_is_preemptible and self.job_resources is not None:
            self.log.warning(
                "job_is_preemptible is ignored: the platform chooses preemptible nodes by preset"
            )
        with NeuroHook(self.neuro_conn_id) as hook:
            prepared = request.resolve(hook.client, identity)
            job = hook.run(prepared.submit(hook.client))
            self.job_id = job.id
            ti.xcom_push(key=JOB_INFO_KEY, value=job_info(job))
            ti.xcom_push(key=JOB_PAGE_KEY, value=hook.job_page_url(job.id))
            self.log.info("Started job %s (%s)", job.id, job.status.value)
            try:
                if not self.job_detach:
                    self._stream_log(hook, job.id)
                job = self._wait(hook, job.id, detached=self.job_detach)
            except BaseException:
                # Killed, timed out or broken: do not leave the job running and billing.
                self._cancel(hook)
                raise
        check_outcome(job, self.raise_on_errno)
        self.log.info("Job %s is %s", job.id, job.status.value)
        return job_info(job)

    def _wait(self, hook: NeuroHook, job_id: str, *, detached: bool) -> apolo_sdk.JobDescription:
        wanted = STARTED if detached else FINISHED
        delays = _backoff(self.poll_interval)
        while True:
            job = hook.run(hook.client.jobs.status(job_id))
            if job.status in wanted:
                return job
            time.sleep(next(delays))

    def _stream_log(self, hook: NeuroHook, job_id: str) -> None:
        for line in _lines(hook.run_iter(hook.client.jobs.monitor(job_id))):
            self.log.info("%s", line)

    def _cancel(self, hook: NeuroHook | None = None) -> None:
        if self.job_id is None:
            return
        try:
            if hook is not None and hook.is_open:
                hook.run(hook.client.jobs.kill(self.job_id))
            else:
                with NeuroHook(self.neuro_conn_id) as fresh:
                    fresh.run(fresh.client.jobs.kill(self.job_id))
            self.log.info("Cancelled job %s", self.job_id)
        except Exception:
            self.log.exception("Could not cancel job %s", self.job_id)

    def on_kill(self) -> None:
        self._cancel()


def _backoff(longest: float, first: float = 0.2) -> Iterator[float]:
    """Check soon after a start, then less and less often, up to ``longest``."""
    delay = first
    while True:
        yield delay
        delay = min(longest, delay * 1.5)


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Whole lines of text from raw log bytes, even with a character split across chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        yield from (line.rstrip("\r") for line in lines)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending
