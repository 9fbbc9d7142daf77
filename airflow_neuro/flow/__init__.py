"""Jobs defined in neuro-flow / apolo-flow live flow files (``.apolo/live.yml``)."""

from airflow_neuro.flow.loader import (
    FlowFileError,
    FlowJob,
    LiveFlow,
    find_flow_file,
    load_flow_job,
)

__all__ = ["FlowFileError", "FlowJob", "LiveFlow", "find_flow_file", "load_flow_job"]
