"""The one-line login messages: the connection named, the token never shown."""

from __future__ import annotations

from airflow.sdk import Connection

from airflow_neuro.client import NeuroConnectionParams
from airflow_neuro.client.login_errors import one_line


def test_a_token_in_an_error_text_is_hidden() -> None:
    params = NeuroConnectionParams(token="secret-token-123", conn_id="c")
    message = one_line(params, "the platform refused the token", "echoed secret-token-123\nback")
    assert message == "connection 'c': the platform refused the token; echoed *** back"


def test_params_built_by_hand_are_an_unnamed_connection() -> None:
    params = NeuroConnectionParams(token="t", api_url="http://p/api/v1")
    assert one_line(params, "nothing answers") == "connection (unnamed): nothing answers"


def test_params_name_their_connection_never_the_token() -> None:
    conn = Connection(conn_id="c", conn_type="neuro", password="secret-token-123")
    params = NeuroConnectionParams.from_connection(conn)
    assert params.conn_id == "c"
    assert repr(params) == (
        "NeuroConnectionParams(conn_id='c', api_url='https://api.apolo.us/api/v1',"
        " cluster=None, org=None, project=None)"
    )
