"""HTTP to a job's port through the platform: joining URLs, checking requests, answers."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from yarl import URL

from airflow_neuro.arguments import check_number
from airflow_neuro.exceptions import JobArgumentError

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Methods a server may be sent twice (RFC 9110, 9.2.2): a request that may have arrived
# is repeated only for these.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# How much of a body an error message quotes: enough for a traceback's last line.
HEAD_CHARS = 500


def join_url(base: str, path: str) -> str:
    """``path`` under a job's ``base`` URL, whatever shape the base has.

    The real platform roots a job at a host of its own (``https://name--x.jobs.<cluster>/``),
    the local one at a path (``http://127.0.0.1:8080/jobs-http/job-1/``). A leading slash in
    ``path`` means the job's root in both, never the host's, so ``path`` always goes under
    the base's path: ``urljoin`` would drop ``/jobs-http/job-1/`` for ``/predict``.
    """
    if not isinstance(path, str):
        raise JobArgumentError("path", f"must be a string, got {type(path).__name__}")
    tail = path.lstrip("/")
    # A client normalises ".." (encoded or not) away and would leave the job's root, for
    # the platform's own API on the local platform, with the token.
    if ".." in (unquote(segment) for segment in tail.split("?", 1)[0].split("/")):
        raise JobArgumentError("path", f"{path!r}: '..' segments are not allowed")
    return base.rstrip("/") + "/" + tail


def same_site(url: str, api_url: str) -> bool:
    """Whether ``url`` belongs to the platform that ``api_url`` serves, so it may be sent
    the platform's token: the API's own origin (the local platform serves jobs there), or
    an https host under the API host's parent domain (``*.jobs.<cluster>.org.apolo.us``
    for ``api.apolo.us``)."""
    target, api = URL(url), URL(api_url)
    if target.origin() == api.origin():
        return True
    parent = (api.host or "").partition(".")[2]
    return target.scheme == "https" and "." in parent and (target.host or "").endswith("." + parent)


def check_method(method: str) -> str:
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise JobArgumentError("method", f"must be one of {', '.join(sorted(METHODS))}: {method!r}")
    return method.upper()


def check_statuses(argument: str, statuses: Any) -> frozenset[int]:
    if isinstance(statuses, (str, bytes)) or not hasattr(statuses, "__iter__"):
        raise JobArgumentError(argument, f"must be a list of HTTP status codes, got {statuses!r}")
    codes = list(statuses)
    if not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes):
        raise JobArgumentError(argument, f"must be HTTP status codes (100-599), got {codes!r}")
    return frozenset(codes)


def check_seconds(argument: str, value: Any) -> float:
    return check_number(argument, value)


@dataclass(frozen=True)
class RequestSpec:
    """One request to a service, checked before anything is sent."""

    method: str = "GET"
    json: Any = None
    data: str | bytes | Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", check_method(self.method))
        if self.json is not None and self.data is not None:
            raise JobArgumentError("json", "give json or data, not both")
        if self.json is not None:
            try:
                jsonlib.dumps(self.json)
            except (TypeError, ValueError) as e:
                raise JobArgumentError("json", f"cannot be sent as JSON: {e}") from None
        if self.data is not None and not isinstance(self.data, (str, bytes, Mapping)):
            raise JobArgumentError(
                "data", f"must be str, bytes or a mapping, got {type(self.data).__name__}"
            )
        headers = self.headers or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise JobArgumentError("headers", "must be a mapping of strings to strings")
        check_seconds("timeout", self.timeout)


@dataclass(frozen=True)
class HttpAnswer:
    """A service's answer, read whole."""

    url: str
    status: int
    reason: str
    content_type: str
    body: bytes
    charset: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode(self.charset or "utf-8", errors="replace")

    def value(self) -> Any:
        """The body parsed as JSON when the server says it is JSON, else its text."""
        media = self.content_type.lower()
        if media == "application/json" or media.endswith("+json"):
            try:
                return jsonlib.loads(self.text())
            except ValueError:
                pass
        return self.text()

    def head(self) -> str:
        """The start of the body, for error messages."""
        text = self.text()
        return text if len(text) <= HEAD_CHARS else text[:HEAD_CHARS] + "..."

    def describe(self) -> str:
        return f"{self.status} {self.reason}".strip()
