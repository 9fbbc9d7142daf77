"""The listener reads the triggers' own arguments: they must still be there."""

from __future__ import annotations

from airflow_neuro.listeners import CANCELLING_TRIGGERS
from airflow_neuro.plugin import NeuroPlugin
from airflow_neuro.triggers.neuro import NeuroJobTrigger
from airflow_neuro.triggers.serving import NeuroServiceTrigger


def test_each_cancelling_trigger_serializes_the_arguments_the_listener_reads() -> None:
    triggers = [
        NeuroJobTrigger(job_id="job-1", neuro_conn_id="c", cancel_on_kill=True),
        NeuroServiceTrigger(
            job_id="job-1", deadline=0.0, neuro_conn_id="c", cancel_on_failure=True
        ),
    ]
    seen = {}
    for trigger in triggers:
        classpath, kwargs = trigger.serialize()
        flag = CANCELLING_TRIGGERS[classpath]
        assert kwargs[flag] is True
        assert kwargs["job_id"] == "job-1"
        assert kwargs["neuro_conn_id"] == "c"
        seen[classpath] = flag
    assert seen == CANCELLING_TRIGGERS


def test_the_plugin_registers_the_listener() -> None:
    from airflow_neuro import listeners

    assert NeuroPlugin.listeners == [listeners]
