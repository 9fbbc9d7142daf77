"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_neuro import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-neuro",
        "name": "Neu.ro / Apolo",
        "description": "Run jobs on the Neu.ro / Apolo ML platform from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Neu.ro / Apolo",
                "external-doc-url": "https://docs.apolo.us",
                "tags": ["service"],
            }
        ],
        "operators": [
            {
                "integration-name": "Neu.ro / Apolo",
                "python-modules": [
                    "airflow_neuro.operators.neuro",
                    "airflow_neuro.operators.serving",
                    "airflow_neuro.operators.flow",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Neu.ro / Apolo",
                "python-modules": ["airflow_neuro.sensors.neuro"],
            }
        ],
        "hooks": [
            {"integration-name": "Neu.ro / Apolo", "python-modules": ["airflow_neuro.hooks.neuro"]}
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_neuro.hooks.neuro.NeuroHook",
                "hook-name": "Neu.ro / Apolo",
                "connection-type": "neuro",
                "conn-fields": {
                    "api_url": {
                        "label": "API URL",
                        "description": "The platform's API, e.g. https://api.apolo.us/api/v1",
                        "schema": {"type": ["string", "null"]},
                    },
                    "cluster": {"label": "Cluster", "schema": {"type": ["string", "null"]}},
                    "org": {"label": "Organization", "schema": {"type": ["string", "null"]}},
                    "project": {"label": "Project", "schema": {"type": ["string", "null"]}},
                    "job_url_template": {
                        "label": "Job page URL",
                        "description": "Link shown for each job; {job_id}, {cluster}, {org} and"
                        " {project} are filled in",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port", "login"],
                    "relabeling": {"password": "Token"},
                    "placeholders": {},
                },
            }
        ],
        "triggers": [
            {
                "integration-name": "Neu.ro / Apolo",
                "python-modules": [
                    "airflow_neuro.triggers.neuro",
                    "airflow_neuro.triggers.serving",
                ],
            }
        ],
        "extra-links": [
            "airflow_neuro.links.neuro.NeuroJobLink",
            "airflow_neuro.links.neuro.NeuroJobHttpLink",
        ],
    }
