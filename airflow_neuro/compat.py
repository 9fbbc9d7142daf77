"""Airflow names that moved into ``airflow.sdk`` during 3.x, from where each version has them.

mypy reads the newest place (the pinned Airflow); at run time the older place is the
fallback, for the oldest supported Airflow (3.1.6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["AirflowException", "AirflowSensorTimeout", "conf"]

if TYPE_CHECKING:
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout
else:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf

    try:
        from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout
    except ImportError:  # Airflow 3.1: its task runner catches these classes
        from airflow.exceptions import AirflowException, AirflowSensorTimeout
