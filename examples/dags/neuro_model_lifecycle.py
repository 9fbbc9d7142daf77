"""A model's whole life on the platform: data, a sweep, the best model served and asked.

1. ``publish_code`` puts the job code (``examples/lifecycle/``) on platform storage, and
   ``prepare`` writes scikit-learn's wine data there, split into training and held-out rows.
2. ``train`` is a sweep: one job per parameter set (dynamic task mapping), each a random
   forest scored by cross-validation. The jobs are cached: a run with the same code, data
   and parameters takes the earlier result instead of training again.
3. ``pick_best`` reads every trial's metrics from storage and chooses the best.
4. ``deploy`` serves it (``serve.py``) and succeeds once it answers ``/health``.
5. ``predict`` sends held-out rows, ``model_info`` asks what is served.
6. ``undeploy`` stops the service, whatever happened before it (a teardown task).

The jobs use the image ``python:3.11``; on the local platform, map it to an environment
that has scikit-learn (``make demo`` does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_neuro.hooks.neuro import NeuroHook
from airflow_neuro.operators.neuro import NeuroRunOperator
from airflow_neuro.operators.serving import (
    NeuroDeployOperator,
    NeuroModelInfoOperator,
    NeuroModelPredictOperator,
    NeuroUndeployOperator,
)

CODE_SOURCE = Path(__file__).parent.parent / "lifecycle"
IMAGE = "python:3.11"
GRID = [{"n_estimators": n, "max_depth": d} for n in (10, 50) for d in (2, 0)]  # 0: no limit
ROOT = "lifecycle"
CODE, DATA, TRIALS = f"{ROOT}/code", f"{ROOT}/data", f"{ROOT}/trials"
SERVICE = "wine-model"


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


def trial_job(params: dict[str, int]) -> dict[str, Any]:
    out = f"{TRIALS}/{trial_id(params)}"
    return {
        "job_command": (
            f"python /code/train.py --data /data --out /trials/{trial_id(params)}"
            f" --n-estimators {params['n_estimators']} --max-depth {params['max_depth']}"
        ),
        # A cached result counts only while its files are still there.
        "cache_outputs": [f"{out}/model.pkl", f"{out}/metrics.json"],
    }


with DAG(
    dag_id="neuro_model_lifecycle",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"port": 18090, "rows": 8},
    tags=["neuro", "example", "lifecycle"],
) as dag:
    code = publish_code(CODE)
    prepare = prepare_data(CODE, DATA)

    train = NeuroRunOperator.partial(
        task_id="train",
        job_image=IMAGE,
        job_volumes=[
            f"storage:{CODE}:/code:ro",
            f"storage:{DATA}:/data:ro",
            f"storage:{TRIALS}:/trials:rw",
        ],
        job_detach=False,
        cache=True,
        cache_inputs=[CODE, DATA],
        poll_interval=0.5,
    ).expand_kwargs([trial_job(params) for params in GRID])

    @task
    def pick_best() -> dict[str, Any]:
        """Every trial's metrics from storage; the best cross-validation accuracy wins, the
        smaller forest on a tie."""
        with NeuroHook() as hook:
            trials = [
                {"trial": trial_id(params), **json.loads(
                    hook.read_text(f"{TRIALS}/{trial_id(params)}/metrics.json"))}
                for params in GRID
            ]  # fmt: skip
        best = max(trials, key=lambda t: (t["cv_accuracy"], -t["params"]["n_estimators"]))
        print_trials(trials, best)
        return {"best": best, "trials": trials}

    chosen = pick_best()
    deploy = serve_best(CODE, TRIALS, SERVICE)
    rows = held_out(DATA, "{{ params.rows }}")
    predict = NeuroModelPredictOperator(
        task_id="predict",
        endpoint=SERVICE,
        request_body={"rows": rows["rows"]},
        response_check=lambda answer: len(answer["labels"]) > 0,
    )
    info = NeuroModelInfoOperator(task_id="model_info", endpoint=SERVICE)

    @task
    def report(
        chosen: dict[str, Any], service: dict[str, Any], answer: dict[str, Any], truth: list[int]
    ) -> dict[str, Any]:
        """What the run found, in the task log and in XCom."""
        return summary(chosen, service, answer, truth)

    undeploy = NeuroUndeployOperator(task_id="undeploy", job_name=SERVICE)

    code >> prepare >> train >> chosen >> deploy
    prepare >> rows
    deploy >> [predict, info]
    found = report(chosen, deploy.output, predict.output, rows["labels"])
    [predict, info, found] >> undeploy.as_teardown(setups=deploy)
