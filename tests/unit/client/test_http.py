"""Joining a job's URL with a path, checking a request, reading an answer."""

from __future__ import annotations

import pytest

from airflow_neuro.client.http import HttpAnswer, RequestSpec, check_statuses, join_url, same_site
from airflow_neuro.exceptions import JobArgumentError


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        # The real platform: a job is a host of its own.
        ("https://m--x.jobs.c.org.apolo.us", "/predict", "https://m--x.jobs.c.org.apolo.us/predict"),
        ("https://m--x.jobs.c.org.apolo.us/", "predict", "https://m--x.jobs.c.org.apolo.us/predict"),
        # The local platform: a job is a path under the platform's host.
        ("http://127.0.0.1:8080/jobs-http/job-1/", "/predict",
         "http://127.0.0.1:8080/jobs-http/job-1/predict"),
        ("http://127.0.0.1:8080/jobs-http/job-1", "/v1/models/m:predict?x=1",
         "http://127.0.0.1:8080/jobs-http/job-1/v1/models/m:predict?x=1"),
        ("http://127.0.0.1:8080/jobs-http/job-1/", "/", "http://127.0.0.1:8080/jobs-http/job-1/"),
        ("http://127.0.0.1:8080/jobs-http/job-1/", "", "http://127.0.0.1:8080/jobs-http/job-1/"),
    ],
)  # fmt: skip
def test_a_path_goes_under_the_jobs_root_for_both_url_shapes(
    base: str, path: str, url: str
) -> None:
    assert join_url(base, path) == url


@pytest.mark.parametrize("path", ["/../api/v1/jobs", "a/../../b", "/.."])
def test_a_path_cannot_climb_out_of_the_job(path: str) -> None:
    with pytest.raises(JobArgumentError, match=r"^path: .*'\.\.' segments are not allowed"):
        join_url("http://h/jobs-http/job-1/", path)


def test_dots_inside_names_and_queries_are_fine() -> None:
    assert join_url("http://h/", "/m..v2/predict?next=../x") == "http://h/m..v2/predict?next=../x"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"method": "FETCH"},
            "method: must be one of DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
        ),
        ({"json": {"a": 1}, "data": "x"}, "json: give json or data, not both"),
        ({"json": {"a": object()}}, "json: cannot be sent as JSON"),
        ({"data": 3}, "data: must be str, bytes or a mapping, got int"),
        ({"headers": {"X-N": 1}}, "headers: must be a mapping of strings to strings"),
        ({"timeout": 0}, "timeout: must be more than 0 seconds, got 0"),
        ({"timeout": float("nan")}, "timeout: must be a finite number of seconds, got nan"),
    ],
)
def test_a_bad_request_names_the_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(JobArgumentError) as raised:
        RequestSpec(**kwargs)  # type: ignore[arg-type]
    assert str(raised.value).startswith(message)


def test_the_method_is_taken_in_any_case() -> None:
    assert RequestSpec("post").method == "POST"


@pytest.mark.parametrize("statuses", ["200", [200, "503"], [99], [True]])
def test_statuses_must_be_http_codes(statuses: object) -> None:
    with pytest.raises(JobArgumentError, match=r"^health_statuses: "):
        check_statuses("health_statuses", statuses)


def answer(body: bytes, content_type: str, status: int = 200) -> HttpAnswer:
    return HttpAnswer("http://h/p", status, "OK", content_type, body)


def test_a_json_answer_is_parsed_and_anything_else_stays_text() -> None:
    assert answer(b'{"y": [1.5]}', "application/json").value() == {"y": [1.5]}
    assert answer(b'{"y": 1}', "application/problem+json").value() == {"y": 1}
    assert answer(b"42", "text/plain").value() == "42"
    assert answer(b"not json", "application/json").value() == "not json"


def test_error_messages_quote_only_the_start_of_a_long_body() -> None:
    long = answer(b"x" * 2000, "text/plain", 500)
    assert not long.ok
    assert long.head() == "x" * 500 + "..."
    assert long.describe() == "500 OK"


def test_encoded_dots_cannot_climb_out_either() -> None:
    with pytest.raises(JobArgumentError, match=r"'\.\.' segments are not allowed"):
        join_url("http://h/jobs-http/job-1/", "/%2e%2e/%2E%2e/api/v1/jobs")


@pytest.mark.parametrize(
    ("url", "api", "trusted"),
    [
        # The real platform: jobs live under the API host's parent domain, over https.
        ("https://m--x.jobs.c.org.apolo.us/", "https://api.apolo.us/api/v1", True),
        ("http://m--x.jobs.c.org.apolo.us/", "https://api.apolo.us/api/v1", False),
        ("https://apolo.us.evil.example/", "https://api.apolo.us/api/v1", False),
        ("https://example.com/predict", "https://api.apolo.us/api/v1", False),
        # The local platform: jobs are paths on the API's own origin.
        ("http://127.0.0.1:8765/jobs-http/job-1/", "http://127.0.0.1:8765/api/v1", True),
        ("http://127.0.0.1:9999/", "http://127.0.0.1:8765/api/v1", False),
        ("http://localhost:8765/x", "http://localhost:8765/api/v1", True),
    ],
)
def test_the_token_goes_only_to_the_platforms_own_hosts(url: str, api: str, trusted: bool) -> None:
    assert same_site(url, api) is trusted
