"""A local platform that speaks the Neu.ro / Apolo HTTP API and runs jobs as local processes.

It imports nothing from the rest of ``airflow_neuro``: the official SDK and CLI talk to it
over HTTP exactly as they talk to the real platform.
"""

from __future__ import annotations

from .app import create_app
from .server import LocalPlatform
from .settings import Preset, Settings

__all__ = ["LocalPlatform", "Preset", "Settings", "create_app"]
