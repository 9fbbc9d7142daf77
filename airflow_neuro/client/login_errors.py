"""Why a login failed, in one line that names the connection, its API URL and the cause.

The SDK's own errors name neither the connection nor what is wrong ("Unable to get server
configuration: 404", "Cannot connect to host ..."). These messages are what a failed task,
a trigger and the connection form's Test button show; the SDK's text is kept at the end.
The token never appears in them.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import aiohttp
import apolo_sdk
from yarl import URL

from airflow_neuro.client.retry import RETRY_STATUSES, last_status
from airflow_neuro.exceptions import NeuroConnectionError, PlatformUnavailable, PlatformUnreachable

if TYPE_CHECKING:
    from airflow_neuro.client.connection import NeuroConnectionParams

API_URL_SCHEMES = ("http", "https")
MIN_TOKEN_TO_HIDE = 8
# What the SDK raises when an answer to /config is not the platform's: not JSON, or JSON
# of another shape.
_NOT_THE_PLATFORMS = (aiohttp.ContentTypeError, ValueError, KeyError, TypeError, AttributeError)


def connection_label(conn_id: str | None) -> str:
    return f"connection {conn_id!r}" if conn_id else "connection (unnamed)"


def check_api_url(url: str, conn_id: str | None, field: str) -> None:
    """Refuse, before any request, a URL that cannot be the platform's API."""
    try:
        parsed = URL(url)
        usable = parsed.scheme in API_URL_SCHEMES and bool(parsed.host)
    except (ValueError, TypeError):
        usable = False
    if not usable:
        raise NeuroConnectionError(
            f"{connection_label(conn_id)}: {field} {url!r} is not a URL of the platform's API"
            " (http:// or https://, with a host, such as https://api.apolo.us/api/v1)"
        )


def login_failure(params: NeuroConnectionParams, error: BaseException) -> NeuroConnectionError:
    """A login that failed without retrying: the token, the URL or TLS is wrong."""
    return NeuroConnectionError(
        one_line(params, cause(params.api_url, error, last_status()), error_text(error))
    )


def login_outage(params: NeuroConnectionParams, outage: PlatformUnavailable) -> PlatformUnreachable:
    """A login that kept failing for the whole retry budget; its text ends the message."""
    last = outage.__cause__ or outage
    return PlatformUnreachable(
        one_line(params, cause(params.api_url, last, last_status()), str(outage))
    )


def no_answer_within(
    params: NeuroConnectionParams, seconds: float, last: BaseException | None
) -> NeuroConnectionError:
    """A login that did not end by its deadline: with the last failed attempt's cause, if
    one failed (a server that takes connections and never answers fails none)."""
    if last is None:
        return NeuroConnectionError(
            one_line(params, f"no answer from {params.api_url} within {seconds:g} s")
        )
    reason = f"{cause(params.api_url, last, None)}, still after {seconds:g} s"
    return NeuroConnectionError(one_line(params, reason, error_text(last)))


def choice_refused(
    params: NeuroConnectionParams, field: str, wanted: str, error: BaseException
) -> NeuroConnectionError:
    """The token logged in, but cannot use the cluster, org or project the connection names."""
    return NeuroConnectionError(
        one_line(
            params,
            f"the token cannot use {field} {wanted!r} at {params.api_url}",
            error_text(error),
        )
    )


def cause(url: str, error: BaseException, status: int | None) -> str:
    """The cause in plain words, from the error and the status of the last answer, if any."""
    if isinstance(error, apolo_sdk.AuthError) or status in (401, 403):
        told = f" (HTTP {status})" if status in (401, 403) else ""
        return f"the platform at {url} refused the token{told}"
    if status == 404:
        return f"{url} is not the platform's API: it has no /config (HTTP 404)"
    if status == 200 and isinstance(error, _NOT_THE_PLATFORMS):
        return f"{url} is not the platform's API: its /config answer is not the platform's"
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return f"the TLS certificate of {url} is not trusted"
    if isinstance(error, aiohttp.ClientSSLError):
        return f"TLS with {url} failed (an https:// URL of a plain-HTTP server?)"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"nothing answers at {url}: host {error.host!r} is unknown"
    if isinstance(error, aiohttp.ClientConnectorError):
        code = error.os_error.errno
        reason = os.strerror(code).lower() if code else "no connection"
        return f"nothing answers at {url} ({reason})"
    if isinstance(error, asyncio.TimeoutError):
        return f"{url} gave no answer in time"
    if isinstance(error, aiohttp.ClientConnectionError):
        return f"{url} dropped the connection without an answer"
    if status in RETRY_STATUSES:
        return f"the platform at {url} is unavailable (HTTP {status})"
    if status is not None and status != 200:
        return f"{url} answered HTTP {status} to the login"
    return f"logging in at {url} failed"


def error_text(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def one_line(params: NeuroConnectionParams, reason: str, detail: str = "") -> str:
    """``connection 'id': reason; detail`` on one line, without the token."""
    text = " ".join(f"{connection_label(params.conn_id)}: {reason}".split())
    if detail:
        text += "; " + " ".join(detail.split())
    # The SDK's errors do not carry the token; this is in case one ever does. A token too
    # short to tell from ordinary words (a test's) is left, as Airflow's masking leaves it.
    if len(params.token) >= MIN_TOKEN_TO_HIDE:
        text = text.replace(params.token, "***")
    return text
