from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import apolo_sdk
import pytest
from yarl import URL

from airflow_neuro.localplatform import LocalPlatform, Settings
from airflow_neuro.localplatform.tokens import make_token


def platform_settings(data_dir: Path, token: str | None = None) -> Settings:
    # One "minute" of life span is a second here, and kills escalate quickly.
    return Settings(
        data_dir=data_dir,
        token=token or make_token("local"),
        minute_seconds=1.0,
        kill_grace_seconds=2.0,
    )


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[LocalPlatform]:
    async with LocalPlatform(platform_settings(tmp_path / "platform")) as running:
        yield running


async def login(api_url: str, token: str, config_dir: Path) -> apolo_sdk.Client:
    config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(config_dir, 0o700)
    await apolo_sdk.login_with_token(token, url=URL(api_url), path=config_dir)
    return await apolo_sdk.get(path=config_dir)


@pytest.fixture
async def client(platform: LocalPlatform, tmp_path: Path) -> AsyncIterator[apolo_sdk.Client]:
    sdk = await login(platform.api_url, platform.settings.token, tmp_path / "sdk-config")
    try:
        yield sdk
    finally:
        await sdk.close()


@pytest.fixture
async def http(platform: LocalPlatform) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP session that sends the platform's token."""
    headers = {"Authorization": f"Bearer {platform.settings.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


@dataclass
class Server:
    """The storage API of a running platform, for raw HTTP requests."""

    root: Path
    api_url: str
    token: str

    @property
    def project_dir(self) -> Path:
        return self.root / "local" / "default"

    def url(self, raw_path: str) -> URL:
        """A storage URL from an already-encoded path: nothing is normalized on the way."""
        return URL(f"{self.api_url}/storage/{raw_path}", encoded=True)

    def project_url(self, path: str) -> URL:
        return self.url(f"local/default/{path}")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def server(platform: LocalPlatform) -> Server:
    """The whole local platform; its storage root and raw-HTTP coordinates."""
    platform.settings.storage_dir.joinpath("local", "default").mkdir(parents=True, exist_ok=True)
    return Server(platform.settings.storage_dir, platform.api_url, platform.settings.token)
