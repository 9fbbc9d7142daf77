"""Every test runs against a throwaway Airflow home: never the user's ~/airflow."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import apolo_sdk
import pytest
from yarl import URL

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
JOBS_VENV = REPO / ".venv-jobs"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-neuro-tests-"))

# Set before anything imports airflow: its configuration is read once, at import.
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "examples" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
)

# These import Airflow, which must see the environment above.
from airflow_neuro.client.retry import retrying, status_tracer  # noqa: E402
from airflow_neuro.localplatform.spawn import spawned  # noqa: E402


def free_port() -> int:
    """A loopback port nothing listens on now: jobs share the machine's network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@dataclass
class PlatformProcess:
    """The local platform as a separate process, as users run it."""

    api_url: str
    token: str
    data_dir: Path

    def connection_json(self) -> str:
        return json.dumps(
            {"conn_type": "neuro", "password": self.token, "extra": {"api_url": self.api_url}}
        )

    def jobs(self, *tags: str) -> list[apolo_sdk.JobDescription]:
        """Jobs carrying every tag, oldest first, read with the SDK."""

        async def listed(client: apolo_sdk.Client) -> list[apolo_sdk.JobDescription]:
            async with client.jobs.list(tags=set(tags)) as found:
                return [job async for job in found]

        return self._with_client(listed, "listing jobs")

    def cancel(self, job_id: str) -> None:
        self._with_client(lambda client: client.jobs.kill(job_id), f"cancelling {job_id}")

    def _with_client(self, call: Callable[[apolo_sdk.Client], Awaitable[T]], what: str) -> T:
        async def logged_in(config: Path) -> T:
            (config / "db").unlink(missing_ok=True)
            factory = apolo_sdk.Factory(path=config, trace_configs=[status_tracer()])
            await factory.login_with_token(self.token, url=URL(self.api_url))
            client = await factory.get()
            try:
                return await call(client)
            finally:
                await client.close()

        with tempfile.TemporaryDirectory() as config:
            # A faulty platform fails some of these requests too: ask again.
            return asyncio.run(retrying(lambda: logged_in(Path(config)), what=what))


@contextmanager
def serving(
    data_dir: Path, *options: str, runtimes: dict[str, Path] | None = None
) -> Iterator[PlatformProcess]:
    # One life-span minute lasts a second, so life-span ends can be tested.
    with spawned(data_dir, "--minute-seconds", "1", *options, runtimes=runtimes) as served:
        yield PlatformProcess(served.api_url, served.token, data_dir)


@pytest.fixture(scope="session")
def platform_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    # The examples' image, as `make demo` maps it (make test builds the environment).
    runtimes = {"python:3.11": JOBS_VENV} if JOBS_VENV.is_dir() else None
    with serving(tmp_path_factory.mktemp("platform"), runtimes=runtimes) as platform:
        os.environ["AIRFLOW_CONN_NEURO_DEFAULT"] = platform.connection_json()
        try:
            yield platform
        finally:
            os.environ.pop("AIRFLOW_CONN_NEURO_DEFAULT", None)


@pytest.fixture(scope="session")
def faulty_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    """30 % of requests answered with 502, 503, a reset or a 2 s delay; streams cut too."""
    with serving(
        tmp_path_factory.mktemp("faulty"), "--fault-rate", "0.3",
        "--fault-kinds", "502,503,reset,delay",
    ) as platform:  # fmt: skip
        yield platform


@pytest.fixture(scope="session")
def cutting_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    """Requests are served; half of the log chunks sent end their stream."""
    with serving(
        tmp_path_factory.mktemp("cutting"), "--fault-rate", "0.5", "--fault-kinds", "cut"
    ) as platform:
        yield platform
