"""The provider's Airflow plugin: its listener, which Airflow loads only from a plugin."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_neuro import listeners


class NeuroPlugin(AirflowPlugin):
    name = "neuro"
    listeners = [listeners]
