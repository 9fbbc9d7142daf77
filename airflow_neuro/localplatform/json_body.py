"""JSON request bodies: read within a size limit and parsed strictly, for every JSON API.

The application accepts large bodies (storage uploads stream gigabytes), so a JSON API
cannot rely on aiohttp's ``client_max_size``: ``request.json()`` would buffer a body of any
size that limit allows, several times over while it decodes. :func:`read_json` reads at
most :data:`MAX_JSON_BODY_BYTES` and refuses the rest with a 413.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, NoReturn

from aiohttp import web

from .errors import BadRequest, BodyTooLarge

# Far beyond any job or flow request the SDK sends (a few KiB), small enough that reading
# and parsing one costs little.
MAX_JSON_BODY_BYTES = 2**20
# The deepest real request is a job's container.volumes[i] (4 levels).
MAX_JSON_DEPTH = 32


class _Refused(ValueError):
    """Parsed JSON the APIs do not take, with the reason."""


def _no_constant(name: str) -> NoReturn:
    raise _Refused(f"{name} is not a number JSON allows; numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise _Refused(f"{text[:40]} is out of range; numbers must be finite")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (a guard against slow parsing)
        digits = sys.get_int_max_str_digits()
        raise _Refused(f"integers may have at most {digits} digits") from None


def _too_deep(value: Any) -> bool:
    """Whether arrays and objects nest more than MAX_JSON_DEPTH deep; without recursion,
    so that the check itself cannot run out of stack."""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, (dict, list)):
                if depth >= MAX_JSON_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


async def _read_limited(request: web.Request, context: str) -> bytes:
    too_large = BodyTooLarge(
        f"{context}the body is larger than {MAX_JSON_BODY_BYTES} bytes (1 MiB),"
        " the most a JSON request may carry"
    )
    # Decided up front when the client says the size; a chunked body is counted as it
    # comes, and never more than one byte past the limit is read.
    declared = request.content_length
    if declared is not None and declared > MAX_JSON_BODY_BYTES:
        raise too_large
    body = bytearray()
    while True:
        chunk = await request.content.read(MAX_JSON_BODY_BYTES + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_JSON_BODY_BYTES:
            raise too_large


async def read_json(request: web.Request, context: str = "") -> Any:
    """The request's JSON body, or BadRequest (400) / BodyTooLarge (413).

    ``context`` starts every error message (``"Invalid live job: "``). Refused: a body
    over MAX_JSON_BODY_BYTES, text that is not UTF-8 JSON, NaN and Infinity (Python's json
    takes them, no other JSON parser does), numbers out of a double's range, and nesting
    deeper than MAX_JSON_DEPTH.
    """
    raw = await _read_limited(request, context)
    try:
        value = json.loads(
            raw.decode("utf-8"),
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_integer,
        )
    except _Refused as e:
        raise BadRequest(f"{context}the body is not valid JSON: {e}") from None
    except (ValueError, RecursionError):
        # RecursionError: nested far too deep for the parser; UnicodeDecodeError is a
        # ValueError too.
        raise BadRequest(f"{context}the body is not valid JSON") from None
    if _too_deep(value):
        raise BadRequest(
            f"{context}the body is not valid JSON: arrays and objects may nest at most"
            f" {MAX_JSON_DEPTH} deep"
        )
    return value
