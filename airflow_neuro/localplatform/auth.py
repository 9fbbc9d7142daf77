"""Bearer-token authentication, accepted the three ways the real platform accepts it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from .tokens import token_matches

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Open endpoints; /config answers {"authorized": false} itself when no token is sent.
PUBLIC_PATHS = frozenset({"/api/v1/config", "/api/v1/ping", "/ping"})
WS_TOKEN_PROTOCOL = "bearer.apolo.us-"
TOKEN_QUERY = "neuro-auth-token"


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if TOKEN_QUERY in request.query:
        return request.query[TOKEN_QUERY]
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(WS_TOKEN_PROTOCOL):
            return proto[len(WS_TOKEN_PROTOCOL) :]
    return None


def is_authorized(request: web.Request, token: str) -> bool:
    given = request_token(request)
    return given is not None and token_matches(given, token)


def not_authenticated() -> web.HTTPUnauthorized:
    # The real platform answers 401 with no JSON body.
    return web.HTTPUnauthorized(text="Not authenticated")


def auth_middleware(token: str, open_prefixes: tuple[str, ...] = ()) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in PUBLIC_PATHS or path.startswith(open_prefixes):
            return await handler(request)
        if not is_authorized(request, token):
            raise not_authenticated()
        return await handler(request)

    return middleware
