"""What a ``neuro`` connection says, and logging in with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import apolo_sdk
from yarl import URL

from airflow_neuro.client.login_errors import (
    check_api_url,
    choice_refused,
    login_failure,
    login_outage,
    no_answer_within,
)
from airflow_neuro.client.retry import retrying, status_tracer
from airflow_neuro.exceptions import NeuroConnectionError, PlatformUnavailable

if TYPE_CHECKING:
    from airflow.sdk import Connection

DEFAULT_API_URL = "https://api.apolo.us/api/v1"


@dataclass(frozen=True)
class NeuroConnectionParams:
    """How to reach the platform and where to run."""

    token: str
    api_url: str = DEFAULT_API_URL
    cluster: str | None = None
    org: str | None = None
    project: str | None = None
    # Where a person sees a job: {job_id}, {cluster}, {org} and {project} are filled in.
    job_url_template: str | None = None
    # The Airflow connection these came from, named in every error about them.
    conn_id: str | None = None

    def __repr__(self) -> str:  # never show the token, even in a traceback
        return (
            f"NeuroConnectionParams(conn_id={self.conn_id!r}, api_url={self.api_url!r},"
            f" cluster={self.cluster!r}, org={self.org!r}, project={self.project!r})"
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
            raise NeuroConnectionError(
                f"connection {conn.conn_id!r} has no token: set its password or the"
                ' "token" key of its extra'
            )
        api_url = field("api_url")
        if api_url is not None:
            check_api_url(api_url, conn.conn_id, "api_url")
        else:
            api_url = _url_from_host(conn)
            if api_url is not None:
                check_api_url(api_url, conn.conn_id, "host")
        return cls(
            token=token,
            api_url=api_url or DEFAULT_API_URL,
            cluster=field("cluster"),
            org=field("org") or field("org_name"),
            project=field("project") or field("project_name"),
            job_url_template=field("job_url_template"),
            conn_id=conn.conn_id,
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
    params: NeuroConnectionParams,
    config_dir: Path,
    retry_budget: float,
    deadline: float | None = None,
) -> apolo_sdk.Client:
    """Log in with a token into ``config_dir`` and choose the cluster, org and project.

    Logging in is one GET of the platform's config, so it is retried on transient faults
    within ``retry_budget``; ``deadline`` (seconds) bounds the whole login, even against a
    server that takes the connection and never answers. Whatever fails, the error is a
    ``NeuroConnectionError`` that names the connection, its API URL and the cause
    (``PlatformUnreachable``, also a ``PlatformUnavailable``, when the budget ran out).
    """
    check_api_url(params.api_url, params.conn_id, "api_url")
    failures: list[Exception] = []
    timer = asyncio.timeout(deadline)
    try:
        async with timer:
            return await _logged_in(params, config_dir, retry_budget, failures)
    except NeuroConnectionError:
        raise
    except PlatformUnavailable as e:
        raise login_outage(params, e) from e
    except Exception as e:
        if deadline is not None and timer.expired():
            last = failures[-1] if failures else None
            raise no_answer_within(params, deadline, last) from last
        raise login_failure(params, e) from e


async def _logged_in(
    params: NeuroConnectionParams, config_dir: Path, retry_budget: float, failures: list[Exception]
) -> apolo_sdk.Client:
    factory = apolo_sdk.Factory(path=config_dir, trace_configs=[status_tracer()])

    async def fresh_login() -> None:
        (config_dir / "db").unlink(missing_ok=True)
        try:
            await factory.login_with_token(params.token, url=URL(params.api_url))
        except Exception as e:  # kept, to say what went wrong if the deadline ends the retries
            failures.append(e)
            raise

    await retrying(fresh_login, what="login", budget=retry_budget)
    client = await factory.get()
    try:
        await _choose(client.config, params)
    except BaseException:
        await client.close()
        raise
    return client


async def _choose(config: apolo_sdk.Config, params: NeuroConnectionParams) -> None:
    """Switch to the cluster, then the org, then the project the connection names."""
    choices: list[
        tuple[str, str | None, Callable[[], str | None], Callable[[str], Awaitable[None]]]
    ]
    choices = [
        ("cluster", params.cluster, lambda: config.cluster_name, config.switch_cluster),
        ("org", params.org, lambda: config.org_name, config.switch_org),
        ("project", params.project, lambda: config.project_name, config.switch_project),
    ]
    for field, wanted, current, switch in choices:
        if wanted and wanted != current():
            try:
                await switch(wanted)
            except RuntimeError as e:  # how the SDK says the token has no such choice
                raise choice_refused(params, field, wanted, e) from e
