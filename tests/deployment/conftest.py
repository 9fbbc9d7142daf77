"""A real Airflow deployment: PostgreSQL, scheduler (LocalExecutor), triggerer,
dag-processor and API server, each its own process, beside the local platform."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ..conftest import REPO, PlatformProcess, free_port, serving

DAGS = Path(__file__).parent / "dags"
BIN = Path(sys.executable).parent
COMPONENTS = ("scheduler", "triggerer", "dag-processor", "api-server")


def postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        pytest.skip("PostgreSQL is not installed (make e2e installs it)")
    return versions[-1].parent


@dataclass
class Postgres:
    root: Path
    port: int

    def _run(self, *argv: str) -> None:
        # initdb and postgres refuse to run as root: use the postgres account then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}{done.stderr}"

    def start(self) -> str:
        bin_dir = postgres_bin()
        data = self.root / "pgdata"
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
        self._run(
            str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "postgres.log"),
            "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "-w", "start",
        )  # fmt: skip
        self._run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "airflow")  # fmt: skip
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def stop(self) -> None:
        bin_dir = postgres_bin()
        data = self.root / "pgdata"
        if data.exists():
            self._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")


@dataclass
class Deployment:
    api: str
    home: Path
    platform: PlatformProcess
    session: requests.Session

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.api}/api/v2{path}", timeout=30, **kwargs)
        assert response.ok, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        deadline = time.monotonic() + 120
        while True:  # the dag-processor needs a moment to serialize the DAG
            found = self.session.get(f"{self.api}/api/v2/dags/{dag_id}", timeout=30)
            if found.ok:
                break
            assert time.monotonic() < deadline, f"{dag_id} was never parsed: {found.text}"
            time.sleep(1)
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.call(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return str(run["dag_run_id"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: set[str],
                      timeout: float = 240) -> str:  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            state = self.task_states(dag_id, run_id).get(task_id)
            if state in states:
                return str(state)
            assert time.monotonic() < deadline, (task_id, state, self.logs())
            time.sleep(1)

    def wait_for_trigger_start(
        self, dag_id: str, run_id: str, task_id: str, timeout: float = 120
    ) -> None:
        """Until the triggerer has started the task's trigger (its log says so)."""
        logs = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        deadline = time.monotonic() + timeout
        while not any(
            "starting" in path.read_text(errors="replace") for path in logs.glob("*.trigger.*.log")
        ):
            assert time.monotonic() < deadline, f"the trigger never started: {self.logs()}"
            time.sleep(0.5)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return str(state)
            assert time.monotonic() < deadline, (state, self.logs())
            time.sleep(1)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.session.get(f"{self.api}/api/v2{path}", timeout=30,
                                headers={"Accept": "application/json"}).json()  # fmt: skip
        content = body.get("content", [])
        return json.dumps(content) if not isinstance(content, str) else content

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.call("GET", path, params={"deserialize": "true"})["value"]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((self.home / "components").glob("*.log"))
        )


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    root = Path(tempfile.mkdtemp(prefix="airflow-neuro-deploy-"))
    root.chmod(0o755)  # the postgres account must reach its own directory inside
    postgres = Postgres(root / "postgres", free_port())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        db_url = postgres.start()
        with serving(root / "platform") as platform:
            # The served model's code, which its job reads through a storage volume.
            code = root / "platform" / "storage" / "local" / "default" / "deployment-serving"
            code.mkdir(parents=True)
            shutil.copy(REPO / "examples" / "dags" / "model_server.py", code)
            home = root / "airflow"
            (home / "components").mkdir(parents=True)
            port = free_port()
            api = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
                "AIRFLOW__API__BASE_URL": api,
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW_CONN_NEURO_DEFAULT": platform.connection_json(),
            }
            migrated = subprocess.run(
                [str(BIN / "airflow"), "db", "migrate"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert migrated.returncode == 0, migrated.stdout + migrated.stderr  # fmt: skip
            for component in COMPONENTS:
                args = ["--port", str(port)] if component == "api-server" else []
                with open(home / "components" / f"{component}.log", "wb") as out:
                    processes.append(subprocess.Popen(
                        [str(BIN / "airflow"), component, *args], env=env, stdout=out,
                        stderr=subprocess.STDOUT, start_new_session=True,
                    ))  # fmt: skip
            session = requests.Session()
            deadline = time.monotonic() + 120
            while True:
                try:
                    if session.get(f"{api}/api/v2/monitor/health", timeout=5).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "the API server never came up"
                time.sleep(1)
            yield Deployment(api, home, platform, session)
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        postgres.stop()
        if not os.environ.get("KEEP_DEPLOYMENT"):
            shutil.rmtree(root, ignore_errors=True)
