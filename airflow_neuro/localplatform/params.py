"""Query parameters read the same way by every API."""

from __future__ import annotations

from aiohttp import web

from .errors import BadRequest

YES = ("1", "true", "yes", "on")
STRICT_YES = ("1", "true")
STRICT_NO = ("0", "false")


def query_flag(
    request: web.Request, name: str, *, default: bool = False, strict: bool = False
) -> bool:
    """A yes/no query parameter; ``default`` when it is absent.

    Strict, only 1/true and 0/false are understood and anything else is a BadRequest: the
    storage API's ``recursive`` decides whether a whole tree goes, so a typo must not be
    guessed at. Otherwise, as the job API reads its filters, 1/true/yes/on is yes and
    anything else no.
    """
    value = request.query.get(name)
    if value is None:
        return default
    word = value.lower()
    if not strict:
        return word in YES
    if word in STRICT_YES:
        return True
    if word in STRICT_NO:
        return False
    raise BadRequest(f"{name!r} must be true/1 or false/0, not {value!r}")
