"""The errors handlers and services raise, and the one middleware that answers clients with them.

Every error answer is JSON: ``{"error": <message>}``, plus ``"errno"`` (a name such as
``"ENOENT"``) for a file-system error, which the SDK raises again as the same OSError.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(ValueError):
    """A request the platform refuses with 400; the text is the error the client shows."""


class JobRequestError(BadRequest):
    """A job request the real platform refuses too, with the same text."""


class JobNameTaken(JobRequestError):
    """A live job in the same project already has the name; a finished one frees it."""


class JobNotFound(LookupError):
    """No job has that id, nor, among its owner's jobs, that name."""


class PathEscapes(ValueError):
    """A storage path that would lead outside the storage root."""


class RecordNotFound(LookupError):
    """No flow record (project, live job) has that id or name.

    404, unlike an unknown job: the flow API answers so, and apolo-flow creates a project
    only when the lookup raises the SDK's ResourceNotFound.
    """


class RecordExists(Exception):
    """A flow record that must be unique already exists: 409, as the flow API answers."""


class AccessDenied(Exception):
    """The request names a cluster, org or project the platform's one user cannot use: 403."""


class BodyTooLarge(Exception):
    """A request body larger than its API reads: 413, answered without reading the rest."""


def shown(text: str, length: int = 64) -> str:
    """Text from a request as an error message quotes it: a long one is cut."""
    return text if len(text) <= length else text[:length] + "..."


def error_body(message: str, code: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if code is not None:
        body["errno"] = errno.errorcode.get(code, str(code))
    return body


def os_error_body(e: OSError) -> dict[str, Any]:
    return error_body(e.strerror or str(e), e.errno)


def _file_error(e: ValueError | OSError) -> web.Response:
    if isinstance(e, ValueError):  # first: a few errors are both, and carry no errno
        return web.json_response(error_body(str(e)), status=400)
    if isinstance(e, FileNotFoundError):
        # 404, not 400: the SDK relies on ResourceNotFound (e.g. to decide mkdir/upload).
        body = error_body(e.strerror or "Not found", errno.ENOENT)
        return web.json_response(body, status=404)
    return web.json_response(os_error_body(e), status=400)


def error_middleware(file_api_prefixes: tuple[str, ...] = ()) -> Middleware:
    """Answers the errors above wherever they are raised.

    Under ``file_api_prefixes`` (the storage API) a file system's errors are part of the
    answer: any ValueError is the request's fault and any OSError is reported with its errno.
    Elsewhere they are the platform's own faults and stay 500s.
    """

    @web.middleware
    async def handle_exceptions(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (PathEscapes, AccessDenied) as e:
            return web.json_response(error_body(str(e)), status=403)
        except RecordNotFound as e:
            return web.json_response(error_body(str(e)), status=404)
        except RecordExists as e:
            return web.json_response(error_body(str(e)), status=409)
        except BodyTooLarge as e:
            return web.json_response(error_body(str(e)), status=413)
        except (BadRequest, JobNotFound) as e:
            # An unknown job is a 400 on the real platform too, not a 404.
            return web.json_response(error_body(str(e)), status=400)
        except (ValueError, OSError) as e:
            if not request.path.startswith(file_api_prefixes):
                raise
            return _file_error(e)

    return handle_exceptions
