"""NeuroFlowJobOperator: run a job defined in a neuro-flow / apolo-flow ``live.yml``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_neuro.compat import conf
from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.flow.loader import FlowFileError, FlowJob, LiveFlow
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.job_request import JobRequest, check_environ, check_tags
from airflow_neuro.operators.neuro import NeuroRunOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

REQUEST_FIELDS = frozenset(f.name for f in dataclasses.fields(JobRequest))
# What ${{ flow.username }} and ${{ project.project_name }} are before the task connects.
USER_STAND_IN = "user"
PROJECT_STAND_IN = "project"


class NeuroFlowJobOperator(NeuroRunOperator):
    """Run the job ``job`` of a live flow file, as ``apolo-flow run JOB`` would start it.

    :param flow_file: a ``live.yml`` or a project folder holding ``.apolo/`` or ``.neuro/``
        (templated). A relative path is looked up next to the DAG file, then in the DAGs
        folder.
    :param job: the job's id in the file (templated).
    :param params: Airflow params; those the job declares fill its ``params``, and a DAG
        run's conf overrides them as it overrides any param. Values written in the DAG file
        are templated; values from a run's conf are taken as they are. A task-level param
        the job does not declare is an error.

    Any ``NeuroRunOperator`` argument given here overrides the file: ``job_environ`` and
    ``job_tags`` add to the file's, every other one replaces it. The file's ``detach``
    decides ``job_detach`` (``false``, its default, waits for the job and streams its log).
    A job with ``pass_config: true`` needs ``job_pass_config=True`` here.
    """

    template_fields: Sequence[str] = (*NeuroRunOperator.template_fields, "flow_file", "job")

    def __init__(
        self,
        flow_file: str,
        job: str,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        explicit = frozenset(kwargs) & (REQUEST_FIELDS | {"job_detach"})
        # Placeholders until run time: the file is read when the task runs, after templating.
        kwargs.setdefault("job_command", "")
        kwargs.setdefault("job_image", "")
        super().__init__(params=params, **kwargs)
        self.flow_file = flow_file
        self.job = job
        self._explicit = explicit
        # Airflow hands a task its DAG's params merged with its own. Only those written on
        # this task must be params of the job: a DAG may hold params for other tasks.
        try:
            dag_params = set(self.dag.params)
        except RuntimeError:  # no DAG
            dag_params = set()
        self._task_params = frozenset(set(params or {}) - dag_params)
        self._flow_params: dict[str, Any] = {}
        self._flow: LiveFlow | None = None
        self._early: FlowJob | None = None

    # -- the file -------------------------------------------------------------------------
    def search_path(self) -> tuple[Path, ...]:
        folders = []
        try:
            fileloc = self.dag.fileloc
        except RuntimeError:  # no DAG: a task made on its own, as in a test
            fileloc = None
        if fileloc:
            folders.append(Path(fileloc).parent)
        dags_folder = conf.get("core", "dags_folder", fallback=None)
        if dags_folder:
            folders.append(Path(dags_folder).expanduser())
        return tuple(folders)

    def live_flow(self) -> LiveFlow:
        """The flow file, read once per run of the task (``execute`` reads it afresh)."""
        if self._flow is None:
            with _as_argument_error():
                self._flow = LiveFlow.load(self.flow_file, self.search_path())
        return self._flow

    def flow_job(self, username: str, project_name: str | None) -> FlowJob:
        with _as_argument_error():
            found = self.live_flow().job(self.job, self._flow_params, username=username,
                                         project_name=project_name)  # fmt: skip
        if found.request.job_pass_config and "job_pass_config" not in self._explicit:
            # It puts the connection's token in the job: the DAG must ask for it, not a file.
            raise JobArgumentError(
                "flow_file",
                f"the job {self.job!r} sets pass_config, which gives the job the"
                f" connection's token: pass job_pass_config=True to allow it",
            )
        return found

    def early_job(self) -> FlowJob:
        """The job before connecting, once per run: the user and project names are not known
        yet, so stand-ins let the rest of the job be checked early. resolve_request
        evaluates it again with the real names, and that request is checked again before
        anything is sent."""
        if self._early is None:
            self._early = self.flow_job(USER_STAND_IN, PROJECT_STAND_IN)
        return self._early

    def job_request(self) -> JobRequest:
        return self._with_overrides(self.early_job().request)

    def resolve_request(self, hook: NeuroHook, request: JobRequest) -> JobRequest:
        config = hook.client.config
        found = self.flow_job(config.username, config.project_name)
        if found.project_name and found.project_name != config.project_name:
            raise JobArgumentError(
                "flow_file",
                f"the project file sets project_name {found.project_name!r}, but the"
                f" connection {self.neuro_conn_id!r} works in project"
                f" {config.project_name!r}: give the connection that project",
            )
        return self._with_overrides(found.request)

    def _with_overrides(self, request: JobRequest) -> JobRequest:
        given: dict[str, Any] = {}
        for name in self._explicit & REQUEST_FIELDS:
            value = getattr(self, name)
            if name == "job_environ":
                value = {**request.job_environ, **check_environ(name, value)}
            elif name == "job_tags":
                check_tags(name, value)
                value = sorted({*request.job_tags, *value})
            given[name] = value
        return dataclasses.replace(request, **given)

    def execute(self, context: Context) -> dict[str, Any]:
        # A change to the file applies from the next run on.
        self._flow = self._early = None
        self._flow_params = self._params_for_job(context)
        if "job_detach" not in self._explicit:
            self.job_detach = self.early_job().detach
        return super().execute(context)

    def _params_for_job(self, context: Context) -> dict[str, Any]:
        """The params the job declares, from the task's; task-level extras refused.

        A value as the DAG file gives it is rendered (``"{{ ds }}"``); one a run's conf
        gave is taken as it is: whoever triggers a run must not reach templates (and,
        through them, connections and variables).
        """
        flow = self.live_flow()
        with _as_argument_error():
            declared = flow.declared_params(self.job)
        extra = sorted(self._task_params - set(declared))
        if extra:
            raise JobArgumentError(
                "params",
                f"the job {self.job!r} of {flow.path} has no param"
                f" {', '.join(map(repr, extra))}; it has: {', '.join(declared) or 'none'}",
            )
        values, written = context["params"], self.params
        found: dict[str, Any] = {}
        for name in declared:
            value = values.get(name)
            if value is None:
                continue
            as_written = name in written and written[name] == value
            found[name] = self.render_template(value, context) if as_written else value
        return found


@contextmanager
def _as_argument_error() -> Iterator[None]:
    """A flow file's error as the operator's argument error, naming ``flow_file``."""
    try:
        yield
    except FlowFileError as e:
        raise JobArgumentError("flow_file", str(e)) from None
