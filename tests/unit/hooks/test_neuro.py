"""What a ``neuro`` connection says, in each form Airflow stores it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_neuro.client import NeuroConnectionParams
from airflow_neuro.client.connection import DEFAULT_API_URL
from airflow_neuro.exceptions import NeuroConnectionError
from airflow_neuro.get_provider_info import get_provider_info
from airflow_neuro.hooks.neuro import NeuroHook


def params(**fields: Any) -> NeuroConnectionParams:
    extra = fields.pop("extra", {})
    conn = Connection(conn_id="c", conn_type="neuro", extra=json.dumps(extra), **fields)
    return NeuroConnectionParams.from_connection(conn)


def test_the_token_from_the_password_or_the_extra() -> None:
    assert params(password="secret-1").token == "secret-1"
    assert params(extra={"token": "secret-2"}).token == "secret-2"
    assert params(extra={"extra__neuro__token": "secret-3"}).token == "secret-3"


def test_where_the_platform_is() -> None:
    assert params(password="tok-x").api_url == DEFAULT_API_URL
    assert params(password="tok-x", extra={"api_url": "http://p/api/v1"}).api_url == (
        "http://p/api/v1"
    )
    assert params(password="tok-x", host="http://p:1/api/v1").api_url == "http://p:1/api/v1"
    assert params(password="tok-x", host="p", port=8080, schema="http").api_url == (
        "http://p:8080/api/v1"
    )
    placed = params(password="tok-x", extra={"cluster": "c", "org_name": "o", "project": "p"})
    assert (placed.cluster, placed.org, placed.project) == ("c", "o", "p")


def test_no_token_names_the_connection() -> None:
    with pytest.raises(NeuroConnectionError, match="connection 'c' has no token"):
        params(extra={"api_url": "http://p"})


def test_the_token_never_shows_in_a_repr() -> None:
    assert "secret-1" not in repr(params(password="secret-1"))


def test_the_hook_registers_the_connection_type() -> None:
    assert (NeuroHook.conn_type, NeuroHook.default_conn_name) == ("neuro", "neuro_default")
    assert NeuroHook.conn_name_attr == "neuro_conn_id"


def test_the_form_for_airflow_3_1_is_the_provider_infos() -> None:
    # 3.1 builds the form from these classmethods, 3.2+ from conn-fields: the same fields.
    [info] = get_provider_info()["connection-types"]
    behaviour = NeuroHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == info["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == {"password": "Token"}
    pytest.importorskip("wtforms", reason="Airflow 3.2+ installs no form library")
    assert set(NeuroHook.get_connection_form_widgets()) == set(info["conn-fields"])
