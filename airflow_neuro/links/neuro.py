"""Extra links on a Neu.ro task: the job's page and, when it has one, its HTTP URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

JOB_INFO_KEY = "assigned_job"
JOB_PAGE_KEY = "neuro_job_page"


def _pulled(ti_key: TaskInstanceKey, key: str) -> Any:
    return XCom.get_value(ti_key=ti_key, key=key)


class NeuroJobLink(BaseOperatorLink):
    """The job on the platform."""

    name = "Neu.ro job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(_pulled(ti_key, JOB_PAGE_KEY) or "")


class NeuroJobHttpLink(BaseOperatorLink):
    """The job's HTTP port, for jobs started with ``job_http_port``."""

    name = "Job HTTP URL"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        info = _pulled(ti_key, JOB_INFO_KEY)
        return str(info.get("http_url") or "") if isinstance(info, dict) else ""
