"""NeuroFlowJobOperator: the file's job, arguments that override it, params, look-up."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, Param

from airflow_neuro.exceptions import JobArgumentError
from airflow_neuro.operators.flow import NeuroFlowJobOperator

LIVE = """\
    kind: live
    jobs:
      train:
        image: ubuntu
        params:
          epochs: "3"
        env: {A: a, B: b}
        tags: [mine]
        preset: cpu-small
        cmd: train --epochs ${{ params.epochs }} --user ${{ flow.username }}
"""


@pytest.fixture
def flow_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "dags" / "proj"
    (folder / ".apolo").mkdir(parents=True)
    (folder / ".apolo" / "live.yml").write_text(textwrap.dedent(LIVE))
    return folder


def context(params: dict[str, Any]) -> Any:
    # render_template needs only what the values use; these are plain.
    return {"params": params, "ti": SimpleNamespace()}


def test_the_file_decides_and_explicit_arguments_override(flow_dir: Path) -> None:
    op = NeuroFlowJobOperator(
        task_id="t",
        flow_file=str(flow_dir),
        job="train",
        job_resources_preset="gpu-small",  # replaces the file's
        job_environ={"B": "mine", "C": "c"},  # adds to the file's env, its names winning
        job_tags=["extra"],  # adds to the file's tags
    )
    request = op.job_request()
    assert request.job_command == "train --epochs 3 --user user"  # a stand-in until connected
    assert request.job_resources_preset == "gpu-small"
    assert request.job_environ == {"A": "a", "B": "mine", "C": "c"}
    assert {"mine", "extra", "job:train"} <= set(request.job_tags)
    assert request.job_image == "ubuntu"


def test_params_come_from_the_task_and_dag_and_are_checked(flow_dir: Path) -> None:
    with DAG("d", schedule=None, start_date=pendulum.datetime(2024, 1, 1),
             params={"epochs": Param(5), "other": 1}):  # fmt: skip
        op = NeuroFlowJobOperator(task_id="t", flow_file=str(flow_dir), job="train")
        wrong = NeuroFlowJobOperator(
            task_id="w", flow_file=str(flow_dir), job="train", params={"epoch": 7}
        )
    # A DAG param the job does not declare ("other") is left alone.
    assert op._params_for_job(context({"epochs": 5, "other": 1})) == {"epochs": 5}
    with pytest.raises(JobArgumentError, match=r"params: the job 'train' of .* no param 'epoch'"):
        wrong._params_for_job(context({"epochs": 5, "other": 1, "epoch": 7}))


def test_a_template_in_the_dag_file_is_rendered_one_from_a_run_conf_is_not(
    flow_dir: Path,
) -> None:
    with DAG("d", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        op = NeuroFlowJobOperator(
            task_id="t", flow_file=str(flow_dir), job="train", params={"epochs": "{{ 2 + 2 }}"}
        )
    assert op._params_for_job(context({"epochs": "{{ 2 + 2 }}"})) == {"epochs": "4"}
    # A conf value is data, even when it looks like a template (it could name a connection).
    sneaky = "{{ conn.neuro_default.password }}"
    assert op._params_for_job(context({"epochs": sneaky})) == {"epochs": sneaky}


def test_pass_config_in_a_file_needs_the_dag_to_allow_it(flow_dir: Path) -> None:
    live = flow_dir / ".apolo" / "live.yml"
    live.write_text(live.read_text() + "    pass_config: true\n")
    op = NeuroFlowJobOperator(task_id="t", flow_file=str(flow_dir), job="train")
    with pytest.raises(JobArgumentError, match=r"pass_config.*pass job_pass_config=True"):
        op.job_request()
    allowed = NeuroFlowJobOperator(
        task_id="a", flow_file=str(flow_dir), job="train", job_pass_config=True
    )
    assert allowed.job_request().job_pass_config is True


def test_a_relative_flow_file_is_found_next_to_the_dag_file(flow_dir: Path) -> None:
    dag_file = flow_dir.parent / "my_dag.py"
    with DAG("d", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
        op = NeuroFlowJobOperator(task_id="t", flow_file="proj", job="train")
    dag.fileloc = str(dag_file)
    assert op.job_request().job_image == "ubuntu"
    missing = NeuroFlowJobOperator(task_id="m", flow_file="nowhere", job="train")
    with pytest.raises(JobArgumentError, match=r"flow_file: .*no live flow file"):
        missing.job_request()


def test_a_bad_file_fails_naming_the_argument_file_and_line(flow_dir: Path) -> None:
    (flow_dir / ".apolo" / "live.yml").write_text("kind: live\njobs:\n  train:\n    cmd: go\n")
    op = NeuroFlowJobOperator(task_id="t", flow_file=str(flow_dir), job="train")
    with pytest.raises(JobArgumentError, match=r"flow_file: .*live.yml:3: jobs.train.image: miss"):
        op.job_request()


def connected(username: str, project: str) -> Any:
    return SimpleNamespace(client=SimpleNamespace(config=SimpleNamespace(
        username=username, project_name=project)))  # fmt: skip


def test_once_connected_the_user_name_fills_in_and_the_project_must_match(
    flow_dir: Path,
) -> None:
    op = NeuroFlowJobOperator(task_id="t", flow_file=str(flow_dir), job="train")
    request = op.resolve_request(connected("alice", "default"), op.job_request())
    assert request.job_command == "train --epochs 3 --user alice"
    (flow_dir / ".apolo" / "project.yml").write_text("id: proj\nproject_name: research\n")
    op = NeuroFlowJobOperator(task_id="t", flow_file=str(flow_dir), job="train")
    with pytest.raises(JobArgumentError, match=r"project_name 'research', but the connection"):
        op.resolve_request(connected("alice", "default"), op.job_request())
    request = op.resolve_request(connected("alice", "research"), op.job_request())
    assert "project:proj" in request.job_tags
