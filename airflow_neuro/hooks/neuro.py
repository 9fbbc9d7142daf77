"""NeuroHook: the synchronous face of the client layer, for operators, sensors and DAG code."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar

import apolo_sdk
from airflow.sdk import BaseHook

from airflow_neuro.client import NeuroClient, NeuroConnectionParams, TaskIdentity
from airflow_neuro.client.http import HttpAnswer, RequestSpec
from airflow_neuro.client.retry import RETRY_STATUSES
from airflow_neuro.client.service import HealthProbe, ServiceInfo, Services
from airflow_neuro.exceptions import NeuroConnectionError
from airflow_neuro.job_request import JobRequest

T = TypeVar("T")

# The Test button: seconds to retry a platform that is down, and to wait for any answer.
TEST_RETRY_BUDGET = 5.0
TEST_DEADLINE = 10.0


class NeuroHook(BaseHook):
    """Talk to the Neu.ro / Apolo platform from synchronous Airflow code.

    ``with NeuroHook() as hook: job = hook.get_job(job_id)``. The hook owns its event loop
    (never the global one), logs in once, into a private temporary config directory that
    is removed on close (or by the next login, if the process is killed first), and turns
    the client layer's coroutines into plain calls. For anything it has no method for,
    ``hook.run(hook.client....)`` runs an SDK coroutine. A login that fails raises
    ``NeuroConnectionError``, naming the connection and the cause.

    :param neuro_conn_id: the ``neuro`` connection to use.
    :param retry_budget: seconds to keep retrying idempotent calls through transient faults
        (connection errors, 502, 503, 504) before failing with ``PlatformUnavailable``.
    """

    conn_name_attr = "neuro_conn_id"
    default_conn_name = "neuro_default"
    conn_type = "neuro"
    hook_name = "Neu.ro / Apolo"

    def __init__(self, neuro_conn_id: str = default_conn_name, retry_budget: float = 300.0) -> None:
        super().__init__()
        self.neuro_conn_id = neuro_conn_id
        self.retry_budget = retry_budget
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: NeuroClient | None = None

    # -- the connection form: Airflow 3.2+ reads conn-fields from the provider info and
    # skips these; 3.1 calls them.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {
            name: StringField(
                lazy_gettext(field["label"]),
                widget=BS3TextFieldWidget(),
                description=field.get("description", ""),
            )
            for name, field in _connection_type_info()["conn-fields"].items()
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        behaviour = _connection_type_info()["ui-field-behaviour"]
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }

    # -- connection and life cycle --------------------------------------------------------
    def connection_params(self) -> NeuroConnectionParams:
        params = NeuroConnectionParams.from_connection(self.get_connection(self.neuro_conn_id))
        _mask(params.token)
        return params

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop

    def login(self) -> NeuroClient:
        """Log in once; later calls give the same client."""
        if self._client is None:
            connect = NeuroClient.connect(self.connection_params(), self.retry_budget)
            self._client = self.loop.run_until_complete(connect)
        return self._client

    @property
    def async_client(self) -> NeuroClient:
        """The client layer itself, logged in: its methods are coroutines for ``run``."""
        return self.login()

    @property
    def client(self) -> apolo_sdk.Client:
        """The logged-in SDK client, for what the hook has no method for."""
        return self.login().sdk

    @property
    def params(self) -> NeuroConnectionParams:
        """The connection as read at login (the token stays masked in logs)."""
        return self.login().params

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        try:
            if self._client is not None:
                self.loop.run_until_complete(self._client.close())
        finally:
            self._client = None
            if self._loop is not None and not self._loop.is_closed():
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()
            self._loop = None

    def __enter__(self) -> NeuroHook:
        self.login()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A hook that was never closed still must not leave the token on disk.
        client = getattr(self, "_client", None)
        if client is not None:
            shutil.rmtree(client.config_dir, ignore_errors=True)

    # -- jobs -----------------------------------------------------------------------------
    def get_job(self, job_id: str) -> apolo_sdk.JobDescription:
        """The job's description, status and history included."""
        return self.run(self.async_client.status(job_id))

    def find_jobs(
        self,
        tags: Iterable[str],
        statuses: Iterable[apolo_sdk.JobStatus | str] = (),
        name: str | None = None,
    ) -> list[apolo_sdk.JobDescription]:
        """Jobs carrying every one of ``tags`` (in one of ``statuses``, named ``name`` in
        this project), newest first."""
        states = [apolo_sdk.JobStatus(s) for s in statuses]
        return self.run(self.async_client.find_jobs(tags, states, name))

    def submit_job(
        self, request: JobRequest, identity: TaskIdentity, adopt_tag: str | None = None
    ) -> apolo_sdk.JobDescription:
        """Check the request against the cluster and start the job exactly once (or take
        the live job that holds its name and carries ``adopt_tag``)."""
        prepared = request.resolve(self.client, identity.tags)
        return self.run(self.async_client.submit_once(prepared, identity, adopt_tag))

    def wait_for_job(
        self, job_id: str, statuses: Iterable[apolo_sdk.JobStatus], poll_interval: float = 10.0
    ) -> apolo_sdk.JobDescription:
        """Wait until the job is in one of ``statuses`` or has finished."""
        return self.run(self.async_client.wait_for(job_id, statuses, poll_interval))

    def iter_job_log(self, job_id: str) -> Iterator[str]:
        """The job's log, line by line as it is written, until the job ends."""
        return self.run_iter(self.async_client.log_lines(job_id))

    def cancel_job(self, job_id: str) -> None:
        """Cancel the job (a finished job stays as it is)."""
        self.run(self.async_client.cancel(job_id))

    def job_page_url(self, job_id: str) -> str:
        """Where a person sees the job: the connection's template, else its API resource."""
        return self.async_client.job_page_url(job_id)

    # -- services -------------------------------------------------------------------------
    @property
    def services(self) -> Services:
        """Served models: the async methods behind ``request`` and ``wait_ready``."""
        return Services(self.async_client)

    def request(
        self,
        endpoint: str,
        path: str = "/",
        *,
        method: str = "GET",
        json: Any = None,
        data: str | bytes | Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        timeout: float = 30.0,
        retry_statuses: Collection[int] = RETRY_STATUSES,
    ) -> HttpAnswer:
        """Send a request to a served model and return its answer, whatever its status.

        :param endpoint: a job name (a live job in this project), a job id, or a URL.
        :param path: the path under the job's URL (``/predict``).
        :param auth: send the connection's token, as a job with ``job_http_auth`` needs.
        :param retry_statuses: answers to ask again for, within the retry budget, as a
            failed connection is.
        """
        spec = RequestSpec(method, json=json, data=data, headers=headers, timeout=timeout)
        return self.run(self.services.request(endpoint, path, spec, auth, retry_statuses))

    def wait_ready(self, job_id: str, probe: HealthProbe) -> ServiceInfo:
        """Wait until the job answers ``probe.path`` with one of ``probe.statuses``."""
        return self.run(self.services.wait_ready(job_id, probe))

    # -- storage --------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        """Whether ``path`` (``models/m.pth``, from the project's root, or a ``storage:`` URI)
        is on storage."""
        return self.run(self.async_client.exists(path))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        """A whole text file from storage; ``apolo_sdk.ResourceNotFound`` when missing."""
        return self.run(self.async_client.read_bytes(path)).decode(encoding)

    def write_text(self, path: str, text: str, encoding: str = "utf-8") -> None:
        """Write a whole text file to storage, making its directory when missing."""
        self.run(self.async_client.write_bytes(path, text.encode(encoding)))

    # -- the sync bridge ------------------------------------------------------------------
    def run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine (typically of ``hook.client``) to its result."""
        self.login()
        return self.loop.run_until_complete(_await(coro))

    def run_retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """Run an idempotent call, again on transient faults, within the retry budget."""
        return self.run(self.async_client.retrying(call, what))

    def run_iter(self, items: AsyncIterator[T] | AbstractAsyncContextManager[Any]) -> Iterator[T]:
        """Yield the items of an async iterator one at a time, as they come.

        SDK calls such as ``client.jobs.monitor(id)`` are async context managers as well
        as iterators; they are entered and left properly.
        """
        self.login()
        loop = self.loop
        manager: AbstractAsyncContextManager[Any] | None = None
        if isinstance(items, AbstractAsyncContextManager):
            manager = items
            iterator: AsyncIterator[T] = loop.run_until_complete(manager.__aenter__())
        else:
            iterator = items.__aiter__()
        step: asyncio.Task[T] | None = None
        try:
            while True:
                step = loop.create_task(_anext(iterator))
                try:
                    yield loop.run_until_complete(step)
                except StopAsyncIteration:
                    return
        finally:
            if not loop.is_closed():
                if step is not None and not step.done():
                    # Interrupted mid-step (a signal, a timeout): the iterator is still
                    # inside that step, and cannot be closed before it is stopped.
                    step.cancel()
                    loop.run_until_complete(asyncio.gather(step, return_exceptions=True))
                if manager is not None:
                    loop.run_until_complete(manager.__aexit__(None, None, None))
                elif hasattr(iterator, "aclose"):
                    loop.run_until_complete(iterator.aclose())

    # -- Airflow UI -----------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Log in and say where: the connection form's Test button.

        A person waits on the answer, so a platform that is down is retried for a few
        seconds only, and the whole login ends within ``TEST_DEADLINE`` however the server
        behaves; a task's login rides out a longer outage.
        """
        self.close()  # a login of its own, with the short budget
        try:
            params = self.connection_params()
            connect = NeuroClient.connect(params, TEST_RETRY_BUDGET, deadline=TEST_DEADLINE)
            self._client = self.loop.run_until_complete(connect)
            config = self._client.config
            return True, (
                f"Logged in to {config.api_url} as {config.username} with connection"
                f" {self.neuro_conn_id!r}: cluster {config.cluster_name}, org"
                f" {config.org_name}, project {config.project_name}"
            )
        except NeuroConnectionError as e:  # its message names the connection and the cause
            return False, str(e)
        except Exception as e:
            return False, f"connection {self.neuro_conn_id!r}: {type(e).__name__}: {e}"
        finally:
            self.close()


def _connection_type_info() -> dict[str, Any]:
    from airflow_neuro.get_provider_info import get_provider_info

    [info] = get_provider_info()["connection-types"]
    return dict(info)


async def _await(coro: Awaitable[T]) -> T:
    return await coro


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


def _mask(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(secret)
