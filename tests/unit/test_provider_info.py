"""The provider's metadata, as Airflow reads it from the entry point."""

from __future__ import annotations

from airflow_neuro.get_provider_info import get_provider_info


def test_provider_info_registers_the_connection_type() -> None:
    info = get_provider_info()
    [conn] = info["connection-types"]
    assert conn["connection-type"] == "neuro"
    assert conn["hook-class-name"] == "airflow_neuro.hooks.neuro.NeuroHook"
    assert conn["ui-field-behaviour"]["relabeling"] == {"password": "Token"}
    assert len(info["extra-links"]) == 2
