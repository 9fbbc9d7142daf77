"""Every test runs against a throwaway Airflow home: never the user's ~/airflow."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apolo_sdk
import pytest
from yarl import URL

REPO = Path(__file__).resolve().parent.parent
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

        async def listed() -> list[apolo_sdk.JobDescription]:
            with tempfile.TemporaryDirectory() as config:
                await apolo_sdk.login_with_token(
                    self.token, url=URL(self.api_url), path=Path(config)
                )
                client = await apolo_sdk.get(path=Path(config))
                try:
                    async with client.jobs.list(tags=set(tags)) as found:
                        return [job async for job in found]
                finally:
                    await client.close()

        return asyncio.run(listed())


@pytest.fixture(scope="session")
def platform_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    data_dir = tmp_path_factory.mktemp("platform")
    # One life-span minute lasts a second, so life-span ends can be tested.
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_neuro.localplatform", "--port", "0",
         "--data-dir", str(data_dir), "--minute-seconds", "1"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        match = re.search(r"serving API (\S+) token (\S+)", process.stdout.readline())
        assert match, "the local platform did not start"
        platform = PlatformProcess(match.group(1), match.group(2), data_dir)
        os.environ["AIRFLOW_CONN_NEURO_DEFAULT"] = platform.connection_json()
        yield platform
    finally:
        os.environ.pop("AIRFLOW_CONN_NEURO_DEFAULT", None)
        process.terminate()
        process.wait(30)
