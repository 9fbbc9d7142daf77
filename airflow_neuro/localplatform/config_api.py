"""GET /api/v1/config: the cluster description the SDK logs in with."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from .auth import is_authorized
from .settings import Settings


def base_url(request: web.Request) -> URL:
    return request.url.origin()


def cluster_config(settings: Settings, base: URL) -> dict[str, Any]:
    api = base / "api/v1"
    return {
        "name": settings.cluster,
        # Images cannot be pulled here; the SDK only needs a registry URL with a host.
        "registry_url": str(base.with_path("/registry")),
        "storage_url": str(api / "storage"),
        "users_url": str(api / "users"),
        "monitoring_url": str(api / "jobs"),
        "secrets_url": str(api / "secrets"),
        "disks_url": str(api / "disk"),
        "buckets_url": str(api / "buckets"),
        "resource_pool_types": [],
        "resource_presets": [p.to_api() for p in settings.presets],
        "orgs": [settings.org],
    }


def config_payload(settings: Settings, base: URL, authorized: bool) -> dict[str, Any]:
    auth = base / "oauth"
    payload: dict[str, Any] = {
        # OAuth fields the SDK requires even for token login; nothing serves them here.
        "auth_url": str(auth / "authorize"),
        "token_url": str(auth / "token"),
        "logout_url": str(auth / "logout"),
        "client_id": "local-platform",
        "audience": str(base),
        "headless_callback_url": str(auth / "show-code"),
        "callback_urls": [str(auth / "callback")],
        "authorized": authorized,
    }
    if authorized:
        payload["clusters"] = [cluster_config(settings, base)]
        payload["projects"] = [
            {
                "name": settings.project,
                "cluster_name": settings.cluster,
                "org_name": settings.org,
                "role": "admin",
            }
        ]
    return payload


def config_routes(settings: Settings) -> list[web.RouteDef]:
    async def get_config(request: web.Request) -> web.Response:
        authorized = is_authorized(request, settings.token)
        return web.json_response(config_payload(settings, base_url(request), authorized))

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="Pong")

    return [
        web.get("/api/v1/config", get_config),
        web.get("/api/v1/ping", ping),
        web.get("/ping", ping),
    ]
