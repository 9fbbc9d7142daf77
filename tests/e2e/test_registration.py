"""Installed is registered: the provider, its connection type and the documented CLI form."""

from __future__ import annotations

import json
import os
import subprocess

from ..conftest import PlatformProcess
from .conftest import AIRFLOW


def airflow(*args: str) -> str:
    # Connection testing is off by default; it runs the hook's test_connection.
    env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    done = subprocess.run([AIRFLOW, *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_provider_is_listed(airflow_db: None) -> None:
    assert "airflow-neuro" in airflow("providers", "list")
    hooks = airflow("providers", "hooks")
    assert "neuro" in hooks
    assert "airflow_neuro.hooks.neuro.NeuroHook" in hooks
    assert "NeuroJobLink" in airflow("providers", "links")
    assert "airflow_neuro.triggers.neuro" in airflow("providers", "triggers")


def test_documented_connection_command(airflow_db: None, platform_process: PlatformProcess) -> None:
    extra = {
        "token": platform_process.token,
        "cluster": "local",
        "api_url": platform_process.api_url,
    }
    airflow(
        "connections", "add", "neuro_cli", "--conn-type", "neuro", "--conn-extra", json.dumps(extra)
    )
    tested = airflow("connections", "test", "neuro_cli")
    assert "Connection success!" in tested
    assert platform_process.token not in tested
