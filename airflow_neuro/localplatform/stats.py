"""Request counts, for measuring what clients cost the platform.

``GET /api/v1/local/stats`` (a local-platform extension, token required) answers
``{"requests": N, "by_route": {"GET /api/v1/jobs/{id}": n, ...}}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PATH = "/api/v1/local/stats"


class RequestStats:
    def __init__(self) -> None:
        self.by_route: Counter[str] = Counter()

    def middleware(self) -> Middleware:
        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path != PATH:
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else request.path
                self.by_route[f"{request.method} {route}"] += 1
            return await handler(request)

        return count

    def routes(self) -> list[web.RouteDef]:
        async def stats(request: web.Request) -> web.Response:
            return web.json_response(
                {"requests": sum(self.by_route.values()), "by_route": dict(self.by_route)}
            )

        return [web.get(PATH, stats)]
