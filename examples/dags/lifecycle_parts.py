"""The steps both lifecycle DAGs share (``neuro_model_lifecycle`` and its MLflow variant).

Not a DAG (``.airflowignore`` says so): the DAG files import it, Airflow having put the
DAGs folder on ``sys.path``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow.sdk import task

from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.operators.serving import NeuroDeployOperator

CODE_SOURCE = Path(__file__).parent.parent / "lifecycle"
IMAGE = "python:3.11"
GRID = [{"n_estimators": n, "max_depth": d} for n in (10, 50) for d in (2, 0)]  # 0: no limit


def trial_id(params: dict[str, int]) -> str:
    return f"rf-{params['n_estimators']}-{params['max_depth'] or 'full'}"


@task
def publish_code(code: str) -> list[str]:
    """Job code to storage, rewritten only when it changed: the cache keys of the jobs
    include the code's files, so an unchanged file must keep its modification time."""
    written = []
    with NeuroHook() as hook:
        for source in sorted(CODE_SOURCE.glob("*.py")):
            path, text = f"{code}/{source.name}", source.read_text()
            if not hook.exists(path) or hook.read_text(path) != text:
                hook.write_text(path, text)
                written.append(source.name)
    print(f"code on storage: {', '.join(written) or 'unchanged'}")
    return written


def prepare_data(code: str, data: str) -> NeuroRunOperator:
    """The wine data to storage, split into training and held-out rows; cached."""
    return NeuroRunOperator(
        task_id="prepare",
        job_image=IMAGE,
        job_command="python /code/prepare.py --out /data",
        job_volumes=[f"storage:{code}:/code:ro", f"storage:{data}:/data:rw"],
        job_detach=False,
        cache=True,
        cache_inputs=[code],
        cache_outputs=[f"{data}/train.csv", f"{data}/test.csv"],
        poll_interval=0.5,
    )


@task(multiple_outputs=True)
def held_out(data: str, rows: int) -> dict[str, Any]:
    """The first held-out rows, to ask the served model about, and their true labels."""
    with NeuroHook() as hook:
        lines = hook.read_text(f"{data}/test.csv").splitlines()[1 : 1 + int(rows)]
    table = [[float(v) for v in line.split(",")] for line in lines]
    return {"rows": [row[:-1] for row in table], "labels": [int(row[-1]) for row in table]}


def serve_best(code: str, trials: str, service: str) -> NeuroDeployOperator:
    """The model ``pick_best`` chose, served by ``serve.py`` once it answers ``/health``."""
    return NeuroDeployOperator(
        task_id="deploy",
        job_name=service,
        job_image=IMAGE,
        job_command=(
            "python /code/serve.py --port {{ params.port }} --model"
            " /trials/{{ ti.xcom_pull(task_ids='pick_best')['best']['trial'] }}/model.pkl"
        ),
        job_volumes=[f"storage:{code}:/code:ro", f"storage:{trials}:/trials:ro"],
        job_http_port="{{ params.port }}",
        health_path="/health",
        ready_timeout=300,
        poll_interval=0.5,
    )


def print_trials(trials: list[dict[str, Any]], best: dict[str, Any]) -> None:
    for t in trials:
        mark = "*" if t is best else " "
        extra = f"  MLflow run {t['run_id']}" if "run_id" in t else ""
        print(f"{mark} {t['trial']:<12} cv {t['cv_accuracy']:.4f}  held-out"
              f" {t['test_accuracy']:.4f}{extra}")  # fmt: skip


def summary(
    chosen: dict[str, Any], service: dict[str, Any], answer: dict[str, Any], truth: list[int]
) -> dict[str, Any]:
    """What a run found, in the shape ``airflow-neuro demo`` prints."""
    right = sum(p == t for p, t in zip(answer["labels"], truth, strict=True))
    found = {
        "trials": chosen["trials"],
        "best": chosen["best"]["trial"],
        "service": service["http_url"],
        "predicted": answer["labels"],
        "expected": truth,
        "right": f"{right}/{len(truth)}",
    }
    print(json.dumps(found, indent=2))
    return found
