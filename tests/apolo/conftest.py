from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import apolo_sdk
import pytest
from yarl import URL

from airflow_neuro.localplatform import LocalPlatform, Settings
from airflow_neuro.localplatform.tokens import make_token


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[LocalPlatform]:
    settings = Settings(data_dir=tmp_path / "platform", token=make_token("local"))
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
