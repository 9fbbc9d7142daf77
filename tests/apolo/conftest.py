from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import apolo_sdk
import pytest
from yarl import URL

from airflow_neuro.localplatform import LocalPlatform, Settings
from airflow_neuro.localplatform.tokens import make_token

from .helpers import Cli


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[LocalPlatform]:
    # Served from the test's event loop: CLI subprocesses must be awaited, never waited on.
    settings = Settings(
        data_dir=tmp_path / "platform", token=make_token("local"), kill_grace_seconds=2.0
    )
    async with LocalPlatform(settings) as running:
        yield running


@pytest.fixture
async def client(platform: LocalPlatform, tmp_path: Path) -> AsyncIterator[apolo_sdk.Client]:
    config = tmp_path / "sdk-config"
    config.mkdir(mode=0o700)
    os.chmod(config, 0o700)
    await apolo_sdk.login_with_token(
        platform.settings.token, url=URL(platform.api_url), path=config
    )
    sdk = await apolo_sdk.get(path=config)
    try:
        yield sdk
    finally:
        await sdk.close()


@pytest.fixture
async def cli(platform: LocalPlatform, tmp_path: Path) -> Cli:
    run = Cli(tmp_path / "cli")
    said = await run("config", "login-with-token", platform.settings.token, platform.api_url)
    assert said.startswith(
        f"Logged into {platform.api_url} as local, current cluster is local, org is local"
    ), said
    return run
