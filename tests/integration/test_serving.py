"""Served models through the hook: a real server as a job on the local platform, reached
over real HTTP through the platform's proxy."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from typing import Any

import apolo_sdk
import pytest

from airflow_neuro.client import TaskIdentity
from airflow_neuro.client.service import HealthProbe
from airflow_neuro.exceptions import (
    JobArgumentError,
    NeuroJobError,
    ServiceEnded,
    ServiceNotReady,
    ServiceRefused,
    ServiceRequestError,
)
from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.job_request import JobRequest
from airflow_neuro.triggers.events import ServiceEvent
from airflow_neuro.triggers.serving import NeuroServiceTrigger

from ..conftest import REPO, PlatformProcess, free_port

SERVER = REPO / "examples" / "dags" / "model_server.py"
RUNS = count()


def probe(path: str = "/health", timeout: float = 30.0, auth: bool = True) -> HealthProbe:
    return HealthProbe(path=path, auth=auth, deadline=time.time() + timeout, poll_interval=0.2)


@contextmanager
def service(
    hook: NeuroHook,
    command: str,
    port: int,
    name: str | None = None,
    auth: bool = True,
    volumes: Sequence[str] = (),
) -> Iterator[str]:
    """A job serving ``port``; cancelled at the end whatever happened."""
    identity = TaskIdentity("serving", "t", f"run-{next(RUNS)}", -1, 1)
    request = JobRequest(
        job_command=command,
        job_image="python:3.11",
        job_http_port=port,
        job_http_auth=auth,
        job_name=name,
        job_volumes=volumes,
    )
    job = hook.submit_job(request, identity)
    try:
        yield job.id
    finally:
        hook.cancel_job(job.id)


# Jobs see the platform's storage through their volumes only, not the test's tmp_path.
MODEL_VOLUME = "storage:integration-model:/model:ro"


@pytest.fixture(scope="module")
def model(platform_process: PlatformProcess) -> str:
    """The model file as the server job sees it, in MODEL_VOLUME."""
    directory = platform_process.data_dir / "storage" / "local" / "default" / "integration-model"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.json").write_text('{"kind": "linear", "slope": 2.0, "intercept": 1.0}')
    shutil.copy(SERVER, directory / SERVER.name)  # the repository may be out of the jobs' view
    return "/model/model.json"


def serve(model: str, port: int, warmup: float = 0.0) -> str:
    return f"python3 /model/{SERVER.name} serve --model {model} --port {port} --warmup {warmup}"


def test_ready_when_it_answers_then_predict_info_and_auth(
    platform_process: PlatformProcess, model: str
) -> None:
    port = free_port()
    with (
        NeuroHook() as hook,
        service(hook, serve(model, port, warmup=1.0), port, volumes=[MODEL_VOLUME]) as job_id,
    ):
        started = time.monotonic()
        info = hook.wait_ready(job_id, probe())
        # The server answers 503 for its first second: running is not ready.
        assert time.monotonic() - started >= 1.0
        assert 1.0 <= info.ready_after_s < 5.0
        assert info.job.status == "running"
        assert (
            info.http_url
            == f"{platform_process.api_url.removesuffix('/api/v1')}/jobs-http/{job_id}/"
        )
        assert info.internal_url == f"http://{job_id}.default:{port}/"

        predicted = hook.request(job_id, "/predict", method="POST", json={"x": [0, 1, 2]})
        assert predicted.ok
        assert predicted.value() == {"y": [1.0, 3.0, 5.0]}
        by_url = hook.request(info.http_url, "info")
        assert by_url.value()["kind"] == "linear"

        # Without the token the platform's proxy refuses: the job requires auth.
        anonymous = hook.request(job_id, "/info", auth=False)
        assert anonymous.status == 401
        with pytest.raises(ServiceRefused, match=r"answered 401 .*\(job_http_auth is off\)"):
            hook.wait_ready(job_id, probe(auth=False))


def test_a_named_service_is_found_by_name(platform_process: PlatformProcess, model: str) -> None:
    port = free_port()
    with (
        NeuroHook() as hook,
        service(hook, serve(model, port), port, "named-model", volumes=[MODEL_VOLUME]) as job_id,
    ):
        hook.wait_ready(job_id, probe())
        assert hook.request("named-model", "/predict", method="POST", json={"x": [1]}).value() == {
            "y": [3.0]
        }
        with pytest.raises(NeuroJobError, match=r"^endpoint: no live job is named 'nobody-here'"):
            hook.request("nobody-here", "/info")


def test_a_server_that_exits_fails_with_its_exit_code_and_log_tail(
    platform_process: PlatformProcess,
) -> None:
    command = "sh -c 'for i in $(seq 1 30); do echo line $i; done; echo model missing >&2; exit 3'"
    with (
        NeuroHook() as hook,
        service(hook, command, free_port()) as job_id,
        pytest.raises(ServiceEnded) as raised,
    ):
        hook.wait_ready(job_id, probe())
    message = str(raised.value)
    assert f"job {job_id} failed: reason=Error" in message
    assert "exit code=3" in message
    assert message.endswith("  line 30\n  model missing")
    assert "line 10\n" not in message  # the tail only
    assert raised.value.job is not None
    assert raised.value.job.exit_code == 3


def test_a_server_that_never_listens_times_out_with_a_hint(
    platform_process: PlatformProcess,
) -> None:
    port = free_port()
    with NeuroHook() as hook, service(hook, "sleep 60", port) as job_id:
        started = time.monotonic()
        with pytest.raises(ServiceNotReady) as raised:
            hook.wait_ready(job_id, probe(timeout=2.0))
        assert 2.0 <= time.monotonic() - started < 5.0
    message = str(raised.value)
    assert f"job {job_id} did not answer /health with 200 in time" in message
    assert "502" in message  # the proxy's answer while nothing listens
    assert f"listens on 0.0.0.0:{port}, not 127.0.0.1" in message


def test_the_token_is_not_sent_to_a_url_off_the_platform(platform_process: PlatformProcess) -> None:
    with NeuroHook() as hook, pytest.raises(JobArgumentError) as raised:
        hook.request("https://models.example.com/predict", method="POST", json={})
    assert str(raised.value).startswith(
        "endpoint: https://models.example.com/predict is not a URL of the platform at"
    )
    assert "use auth=False" in str(raised.value)


# Logs each request as it arrives, and takes 2 s over its answer.
SLOW = """
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        print("got", self.command, self.path, flush=True)
        time.sleep(2)
        self.send_response(200)
        self.end_headers()
    do_GET = do_POST
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


def test_a_post_that_may_have_arrived_is_not_sent_again(
    platform_process: PlatformProcess,
) -> None:
    port = free_port()
    command = f"python3 -c {shlex.quote(SLOW)} {port}"
    with NeuroHook() as hook:
        with service(hook, command, port, auth=False) as job_id:
            url = hook.wait_ready(job_id, probe("/", auth=False)).http_url
            with pytest.raises(ServiceRequestError, match=r"not sent again"):
                hook.request(str(url), "/predict", method="POST", json={}, auth=False, timeout=0.5)
            # An idempotent GET is asked again after its timeouts, within the budget.
            hook.async_client.retry_budget = 3.0
            with pytest.raises(ServiceRequestError, match=r"no answer in the retry budget \(3 s\)"):
                hook.request(job_id, "/info", auth=False, timeout=0.5)
        log = "\n".join(hook.iter_job_log(job_id))
    assert log.count("got POST /predict") == 1
    assert log.count("got GET /info") >= 2


def test_a_failed_deferred_wait_cancels_a_service_the_task_started(
    platform_process: PlatformProcess,
) -> None:
    with NeuroHook() as hook:
        job = hook.submit_job(
            JobRequest(job_command="sleep 60", job_image="python:3.11"),
            TaskIdentity("serving", "t", f"run-{next(RUNS)}", -1, 1),
        )

        async def fire() -> dict[str, Any]:
            trigger = NeuroServiceTrigger(
                job.id, deadline=time.time() + 30, poll_interval=0.2, cancel_on_failure=True
            )
            event = await anext(aiter(trigger.run()))
            return event.payload  # type: ignore[no-any-return]

        event = asyncio.run(fire())
        with pytest.raises(NeuroJobError, match="serves no HTTP port"):
            ServiceEvent.from_json(event).service_or_raise()
        assert hook.get_job(job.id).status == apolo_sdk.JobStatus.CANCELLED
