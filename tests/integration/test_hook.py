"""NeuroHook with the real SDK against the local platform (a separate process)."""

from __future__ import annotations

import json
from pathlib import Path

import apolo_sdk
import pytest
import yarl

from airflow_neuro.hooks.neuro import NeuroHook

from ..conftest import PlatformProcess


def test_documented_branch_example(platform_process: PlatformProcess) -> None:
    models = platform_process.data_dir / "storage/local/default/models"
    models.mkdir(parents=True, exist_ok=True)
    (models / "model.pth").write_bytes(b"weights")

    def exists(path: str) -> bool:
        hook = NeuroHook()
        with hook:
            try:
                hook.run(hook.client.storage.stat(yarl.URL("storage:" + path)))
                return True
            except apolo_sdk.ResourceNotFound:
                return False

    assert exists("models/model.pth")
    assert not exists("models/missing.pth")


def test_logs_in_once_into_a_private_dir_removed_on_close(
    platform_process: PlatformProcess,
) -> None:
    hook = NeuroHook()
    with hook:
        client = hook.client
        assert hook.client is client  # one login for the hook's life
        config_dir = hook.async_client.config_dir
        assert config_dir.stat().st_mode & 0o777 == 0o700
        assert not config_dir.is_relative_to(Path.home())
        assert client.config.cluster_name == "local"
        loop = hook.loop
        assert not loop.is_running()
    assert not config_dir.exists()
    assert loop.is_closed()


def test_run_iter_yields_as_items_come(platform_process: PlatformProcess) -> None:
    with NeuroHook() as hook:
        job = hook.run(
            hook.client.jobs.start(
                image=hook.client.parse.remote_image("ubuntu"),
                preset_name="cpu-small",
                command="sh -c 'echo one; sleep 0.5; echo two'",
            )
        )
        chunks: list[bytes] = list(hook.run_iter(hook.client.jobs.monitor(job.id)))
        assert b"".join(chunks) == b"one\ntwo\n"
        assert len(chunks) >= 2
        jobs: list[apolo_sdk.JobDescription] = list(hook.run_iter(hook.client.jobs.list()))
        listed = [j.id for j in jobs]
        assert job.id in listed


@pytest.mark.parametrize(
    "connection",
    [
        # the documented form: everything in extra
        lambda p: {"conn_type": "neuro", "extra": {"token": p.token, "api_url": p.api_url,
                                                   "cluster": "local"}},
        # the token in the password field, the platform in extra
        lambda p: {"conn_type": "neuro", "password": p.token,
                   "extra": {"api_url": p.api_url, "org": "local", "project": "default"}},
        # the API URL as the host, as a URI-style connection gives it
        lambda p: {"conn_type": "neuro", "password": p.token, "host": p.api_url},
    ],
)  # fmt: skip
def test_connection_forms(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch, connection: object
) -> None:
    value = connection(platform_process)  # type: ignore[operator]
    monkeypatch.setenv("AIRFLOW_CONN_OTHER", json.dumps(value))
    ok, message = NeuroHook("other").test_connection()
    assert ok, message
    assert "cluster local" in message
    assert platform_process.token not in message


def test_test_connection_reports_a_bad_token(
    platform_process: PlatformProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_BAD",
        json.dumps({"conn_type": "neuro", "password": "not-a-token",
                    "extra": {"api_url": platform_process.api_url}}),
    )  # fmt: skip
    ok, message = NeuroHook("bad").test_connection()
    assert not ok
    assert message


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EMPTY", json.dumps({"conn_type": "neuro"}))
    with pytest.raises(ValueError, match="connection 'empty' has no token"):
        NeuroHook("empty").login()
