"""Real Airflow deployments beside the local platform, each component its own process:
PostgreSQL, scheduler, triggerer, dag-processor and API server, with the LocalExecutor
(`deployment`) or with the CeleryExecutor (`celery_deployment`: Redis and two workers)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from ..conftest import REPO, PlatformProcess, free_port, serving

DAGS = Path(__file__).parent / "dags"
BIN = Path(sys.executable).parent
COMPONENTS = ("scheduler", "triggerer", "dag-processor", "api-server")
CELERY_WORKERS = ("worker-1", "worker-2")
# Each Celery worker records its name as the host of the tasks it runs (worker_hostname.py).
WORKER_NAME_VARIABLE = "DEPLOYMENT_WORKER_NAME"
# Task processes per worker: each costs 1-2 s of CPU to start, and the suite runs on 2 cores.
WORKER_CONCURRENCY = 3
# The CeleryExecutor deployment's own settings.
CELERY_SETTINGS = {
    # A task whose worker is lost is failed, then retried, 10 s after its last heartbeat
    # rather than 5 minutes; heartbeats come every second, so a busy worker is not mistaken
    # for a lost one.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "1",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    # The scheduler publishes to Redis from its own process: a pool of publishing processes,
    # each importing Celery, only costs CPU on a small machine.
    "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
}


def postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        pytest.skip("PostgreSQL is not installed (make e2e installs it)")
    return versions[-1].parent


def redis_server() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.skip("Redis (redis-server) is not installed (make e2e installs it)")
    return found


def require_celery_provider() -> None:
    try:
        importlib.metadata.version("apache-airflow-providers-celery")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("apache-airflow-providers-celery is not installed (the celery extra)")


def session_members(leader: int) -> dict[int, int]:
    """Every live process of the session `leader` started, by pid, with its process group.

    Airflow puts each task process in a group of its own, so signalling the leader's group
    alone would leave the tasks running."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended meanwhile
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        state, _, pgid, sid = text[text.rindex(")") + 2 :].split()[:4]
        if int(sid) == leader and state != "Z":
            members[int(stat.parent.name)] = int(pgid)
    return members


def signal_session(leader: int, sig: signal.Signals) -> None:
    # The leader's group first: a Celery worker or an executor killed there forks no new task.
    groups = [leader, *sorted(set(session_members(leader).values()) - {leader})]
    for group in groups:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            continue


def stop_sessions(processes: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM each process's session, SIGKILL whatever is left of them after `timeout`."""
    # A leader already reaped, with nothing left of its session: its pid may be reused.
    processes = [p for p in processes if p.poll() is None or session_members(p.pid)]
    for process in processes:
        signal_session(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        while session_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if session_members(process.pid):
            signal_session(process.pid, signal.SIGKILL)
        process.wait(10)


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
class Redis:
    """The CeleryExecutor's broker, in memory only: it lives as long as its deployment."""

    root: Path
    port: int

    def start(self, processes: list[subprocess.Popen[bytes]]) -> str:
        self.root.mkdir(parents=True)
        log = self.root / "redis.log"
        server = start_process(
            [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.root), "--save", "", "--appendonly", "no"],
            os.environ, log, processes,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.answers():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "Redis never answered"
            time.sleep(0.1)
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@dataclass
class Deployment:
    api: str
    home: Path
    platform: PlatformProcess
    session: requests.Session
    env: dict[str, str] = field(default_factory=dict, repr=False)
    # Every process started, each the leader of its own session: stopped at the end.
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    # The processes by component (COMPONENTS), and the Celery workers by name.
    components: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

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

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        found: list[dict[str, Any]] = []
        while True:  # a page holds 50 at most by default
            page = self.call("GET", path, params={"limit": 100, "offset": len(found)})
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task instance so far, the first first (try_number, hostname, state)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        tries = self.call("GET", path)["task_instances"]
        return sorted(tries, key=lambda found: int(found["try_number"]))

    def worker_running(self, dag_id: str, run_id: str, task_id: str, timeout: float = 120) -> str:
        """The Celery worker that runs the task's current try, once it has started there."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        deadline = time.monotonic() + timeout
        while True:
            ti = self.call("GET", path)
            if ti["state"] == "running" and ti["hostname"] in self.workers:
                return str(ti["hostname"])
            assert time.monotonic() < deadline, (ti, self.logs())
            time.sleep(0.5)

    def kill_worker(self, name: str) -> None:
        """SIGKILL a Celery worker as a lost node dies: the worker, its pool, the supervisors
        and the task processes they forked all at once, with no chance to clean up."""
        worker = self.workers.pop(name)
        signal_session(worker.pid, signal.SIGKILL)
        worker.wait(30)
        deadline = time.monotonic() + 30
        while session_members(worker.pid):
            assert time.monotonic() < deadline, f"{name} left {session_members(worker.pid)}"
            signal_session(worker.pid, signal.SIGKILL)
            time.sleep(0.1)
        # Gone with its whole session: its pid may now be another process's.
        self.processes.remove(worker)
        log = self.home / "components" / f"{name}.log"
        log.rename(log.with_name(f"{name}.killed.log"))  # a worker started later logs anew

    def start_worker(self, name: str) -> None:
        env = {
            **self.env,
            # Both workers run on this machine: each serves its logs on its own port, and
            # records its own name as the host of its tasks.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.deployment.worker_hostname.hostname",
            WORKER_NAME_VARIABLE: name,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        argv = [str(BIN / "airflow"), "celery", "worker", "--celery-hostname", name,
                "--concurrency", str(WORKER_CONCURRENCY)]  # fmt: skip
        log = self.home / "components" / f"{name}.log"
        self.workers[name] = start_process(argv, env, log, self.processes)

    def wait_for_workers(self, timeout: float = 180) -> None:
        """Until every worker says it is ready and answers a ping through the broker."""
        nodes = [f"celery@{name}" for name in self.workers]
        deadline = time.monotonic() + timeout
        # Their logs first: each ping is a process importing Airflow, a second or two of CPU.
        for (name, worker), node in zip(self.workers.items(), nodes, strict=True):
            log = self.home / "components" / f"{name}.log"
            while f"{node} ready." not in log.read_text(errors="replace"):
                assert worker.poll() is None, f"{name} exited: {self.logs()}"
                assert time.monotonic() < deadline, f"{name} never got ready: {self.logs()}"
                time.sleep(0.2)
        app = "airflow.providers.celery.executors.celery_executor.app"
        while True:
            pinged = subprocess.run(
                [str(BIN / "celery"), "--app", app, "inspect", "ping", "--json",
                 "--timeout", "5", "--destination", ",".join(nodes)],
                env=self.env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            answers = pinged.stdout.strip().splitlines()[-1:] if pinged.returncode == 0 else []
            if answers and set(nodes) <= set(json.loads(answers[0])):
                return
            assert time.monotonic() < deadline, (pinged.stdout, pinged.stderr, self.logs())
            time.sleep(1)

    def wait_for_worker_log(self, dag_id: str, run_id: str, task_id: str, try_number: int,
                            text: str, timeout: float = 120) -> None:  # fmt: skip
        """Until the try's log file on the workers' disk holds `text`. Read from the disk: the
        API server would ask the worker's log server, at a hostname that is only a name."""
        path = (self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
                / f"task_id={task_id}" / f"attempt={try_number}.log")  # fmt: skip
        deadline = time.monotonic() + timeout
        while not (path.exists() and text in path.read_text(errors="replace")):
            assert time.monotonic() < deadline, f"{path} never showed {text!r}: {self.logs()}"
            time.sleep(0.2)

    def wait_for_task(self, dag_id: str, run_id: str, task_id: str, states: set[str],
                      timeout: float = 240) -> str:  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            state = self.task_states(dag_id, run_id).get(task_id)
            if state in states:
                return str(state)
            assert time.monotonic() < deadline, (task_id, state, self.logs())
            time.sleep(1)

    def trigger_logs(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """The logs a triggerer wrote for the task's triggers: none until one started."""
        logs = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return [path.read_text(errors="replace") for path in sorted(logs.glob("*.trigger.*.log"))]

    def wait_for_trigger_start(
        self, dag_id: str, run_id: str, task_id: str, timeout: float = 120
    ) -> None:
        """Until the triggerer has started the task's trigger (its log says so)."""
        deadline = time.monotonic() + timeout
        while not any("starting" in log for log in self.trigger_logs(dag_id, run_id, task_id)):
            assert time.monotonic() < deadline, f"the trigger never started: {self.logs()}"
            time.sleep(0.5)

    @contextmanager
    def paused(self, component: str) -> Iterator[None]:
        """The component frozen (SIGSTOP, its whole session) for the block: it does nothing,
        as one that is down or not started yet, and goes on afterwards."""
        leader = self.components[component].pid
        signal_session(leader, signal.SIGSTOP)
        try:
            yield
        finally:
            signal_session(leader, signal.SIGCONT)

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


def start_process(
    argv: list[str], env: Mapping[str, str], log: Path, processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Start one component in a session of its own, which is how it is stopped."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    processes.append(process)
    return process


@contextmanager
def deployed(executor: str, settings: Mapping[str, str] | None = None,
             celery_workers: tuple[str, ...] = ()) -> Iterator[Deployment]:  # fmt: skip
    """A deployment of every component, stopped (every process it started) when it ends."""
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
                "AIRFLOW__CORE__EXECUTOR": executor,
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
                # Log servers on free ports rather than the defaults: other deployments may
                # run on this machine.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW_CONN_NEURO_DEFAULT": platform.connection_json(),
                **(settings or {}),
            }
            if celery_workers:
                broker = Redis(root / "redis", free_port()).start(processes)
                env["AIRFLOW__CELERY__BROKER_URL"] = broker
            migrated = subprocess.run(
                [str(BIN / "airflow"), "db", "migrate"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert migrated.returncode == 0, migrated.stdout + migrated.stderr  # fmt: skip
            deployment = Deployment(api, home, platform, requests.Session(), env, processes)
            for component in COMPONENTS:
                args = ["--port", str(port)] if component == "api-server" else []
                deployment.components[component] = start_process(
                    [str(BIN / "airflow"), component, *args], env,
                    home / "components" / f"{component}.log", processes,
                )  # fmt: skip
            for name in celery_workers:
                deployment.start_worker(name)
            deadline = time.monotonic() + 120
            while True:
                try:
                    if deployment.session.get(f"{api}/api/v2/monitor/health", timeout=5).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "the API server never came up"
                time.sleep(1)
            if celery_workers:
                deployment.wait_for_workers()
            yield deployment
    finally:
        try:
            # Every component's session: task processes, in groups of their own, stop too.
            stop_sessions(processes)
        finally:
            try:
                postgres.stop()
            finally:
                if not os.environ.get("KEEP_DEPLOYMENT"):
                    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """The LocalExecutor: the scheduler runs the tasks."""
    with deployed("LocalExecutor") as running:
        yield running


@pytest.fixture(scope="module")
def celery_deployment() -> Iterator[Deployment]:
    """The CeleryExecutor: Redis as the broker, two workers (CELERY_WORKERS) run the tasks."""
    require_celery_provider()
    redis_server()
    with deployed("CeleryExecutor", CELERY_SETTINGS, CELERY_WORKERS) as running:
        yield running
