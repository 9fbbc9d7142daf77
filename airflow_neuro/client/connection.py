"""What a ``neuro`` connection says, and logging in with it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import apolo_sdk
from yarl import URL

from airflow_neuro.client.retry import retrying, status_tracer
from airflow_neuro.exceptions import NeuroConnectionError

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
            raise NeuroConnectionError(
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


def private_config_dir() -> Path:
    """A fresh directory only this user can read, as the SDK requires for its config."""
    return Path(tempfile.mkdtemp(prefix="airflow-neuro-"))


async def login(
    params: NeuroConnectionParams, config_dir: Path, retry_budget: float
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
