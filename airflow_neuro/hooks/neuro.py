"""NeuroHook: an Airflow connection turned into a logged-in platform SDK client."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import apolo_sdk
from airflow.sdk import BaseHook
from yarl import URL

from airflow_neuro.utils.retry import retrying, status_tracer

if TYPE_CHECKING:
    from airflow.sdk import Connection

T = TypeVar("T")

DEFAULT_API_URL = "https://api.apolo.us/api/v1"
EXTRA_FIELDS = ("token", "api_url", "cluster", "org", "project")


@dataclass(frozen=True)
class NeuroConnectionParams:
    """What a ``neuro`` connection says: how to reach the platform and where to run."""

    token: str
    api_url: str = DEFAULT_API_URL
    cluster: str | None = None
    org: str | None = None
    project: str | None = None
    # Where a person sees a job: {job_id}, {cluster}, {org} and {project} are filled in.
    job_url_template: str | None = None

    def __repr__(self) -> str:  # never show the token, even in a traceback
        return (
            f"NeuroConnectionParams(api_url={self.api_url!r}, cluster={self.cluster!r},"
            f" org={self.org!r}, project={self.project!r})"
        )

    @classmethod
    def from_connection(cls, conn: Connection) -> NeuroConnectionParams:
        extra = conn.extra_dejson

        def field(name: str) -> str | None:
            # The UI stores form fields plainly or with the old extra__neuro__ prefix.
            value = extra.get(name) or extra.get(f"extra__neuro__{name}")
            return str(value) if value not in (None, "") else None

        token = conn.password or field("token")
        if not token:
            raise ValueError(
                f"connection {conn.conn_id!r} has no token: set its password or the"
                ' "token" key of its extra'
            )
        api_url = field("api_url") or _url_from_host(conn) or DEFAULT_API_URL
        return cls(
            token=token,
            api_url=api_url,
            cluster=field("cluster"),
            org=field("org") or field("org_name"),
            project=field("project") or field("project_name"),
            job_url_template=field("job_url_template"),
        )


def _url_from_host(conn: Connection) -> str | None:
    if not conn.host:
        return None
    if "://" in conn.host:
        return conn.host
    scheme = conn.schema or "https"
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{conn.host}{port}/api/v1"


async def login(
    params: NeuroConnectionParams, config_dir: Path, retry_budget: float = 300.0
) -> apolo_sdk.Client:
    """Log in with a token into ``config_dir`` and choose the cluster, org and project.

    Logging in is one GET of the platform's config, so it is retried on transient faults.
    """
    factory = apolo_sdk.Factory(path=config_dir, trace_configs=[status_tracer()])

    async def fresh_login() -> None:
        (config_dir / "db").unlink(missing_ok=True)
        await factory.login_with_token(params.token, url=URL(params.api_url))

    await retrying(fresh_login, what="login", budget=retry_budget)
    client = await factory.get()
    try:
        if params.cluster and params.cluster != client.config.cluster_name:
            await client.config.switch_cluster(params.cluster)
        if params.org and params.org != client.config.org_name:
            await client.config.switch_org(params.org)
        if params.project and params.project != client.config.project_name:
            await client.config.switch_project(params.project)
    except BaseException:
        await client.close()
        raise
    return client


def private_config_dir() -> Path:
    """A fresh directory only this user can read, as the SDK requires for its config."""
    return Path(tempfile.mkdtemp(prefix="airflow-neuro-"))


class NeuroHook(BaseHook):
    """Talk to the Neu.ro / Apolo platform from synchronous Airflow code.

    ``with NeuroHook() as hook: hook.run(hook.client.jobs.status(job_id))``. The hook owns
    its event loop (never the global one), logs in once, into a private temporary config
    directory that is removed on close, and turns coroutines into plain calls.

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
        self._client: apolo_sdk.Client | None = None
        self._config_dir: Path | None = None
        self._params: NeuroConnectionParams | None = None

    # -- connection -----------------------------------------------------------------------
    def connection_params(self) -> NeuroConnectionParams:
        params = NeuroConnectionParams.from_connection(self.get_connection(self.neuro_conn_id))
        _mask(params.token)
        return params

    # -- life cycle -------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop

    def login(self) -> apolo_sdk.Client:
        """Log in once; later calls give the same client."""
        if self._client is None:
            params = self._params = self.connection_params()
            self._config_dir = private_config_dir()
            self._client = self.loop.run_until_complete(
                login(params, self._config_dir, self.retry_budget)
            )
        return self._client

    @property
    def client(self) -> apolo_sdk.Client:
        return self.login()

    @property
    def params(self) -> NeuroConnectionParams:
        """The connection as read at login (the token stays masked in logs)."""
        self.login()
        assert self._params is not None
        return self._params

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def job_page_url(self, job_id: str) -> str:
        """Where a person sees the job: the connection's template, else its API resource."""
        client = self.login()
        assert self._params is not None
        config = client.config
        template = self._params.job_url_template or str(config.api_url / "jobs") + "/{job_id}"
        return template.format(
            job_id=job_id,
            cluster=config.cluster_name,
            org=config.org_name,
            project=config.project_name,
        )

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
            if self._config_dir is not None:
                shutil.rmtree(self._config_dir, ignore_errors=True)
                self._config_dir = None

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
        if getattr(self, "_config_dir", None) is not None:
            shutil.rmtree(self._config_dir, ignore_errors=True)  # type: ignore[arg-type]

    # -- the sync bridge ------------------------------------------------------------------
    def run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine (typically of ``hook.client``) to its result."""
        self.login()
        return self.loop.run_until_complete(_await(coro))

    def run_retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """Run an idempotent call, again on transient faults, within the retry budget."""
        self.login()
        return self.loop.run_until_complete(retrying(call, what=what, budget=self.retry_budget))

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
        try:
            while True:
                try:
                    yield loop.run_until_complete(_anext(iterator))
                except StopAsyncIteration:
                    return
        finally:
            if not loop.is_closed():
                if manager is not None:
                    loop.run_until_complete(manager.__aexit__(None, None, None))
                elif hasattr(iterator, "aclose"):
                    loop.run_until_complete(iterator.aclose())

    # -- Airflow UI -----------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Log in and say where: the connection form's Test button."""
        try:
            config = self.login().config
            return True, (
                f"Logged in to {config.api_url} as {config.username}: cluster"
                f" {config.cluster_name}, org {config.org_name}, project {config.project_name}"
            )
        except Exception as e:
            return False, f"{type(e).__name__}: {e}"
        finally:
            self.close()


async def _await(coro: Awaitable[T]) -> T:
    return await coro


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


def _mask(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(secret)
