"""The model lifecycle of ``neuro_model_lifecycle``, with MLflow tracking the sweep.

1. ``tracking_server`` runs an MLflow tracking server as a platform job; its runs live on
   platform storage, so they outlast the job.
2. ``publish_code`` and ``prepare`` put the job code and the wine data on storage, as in
   the base DAG.
3. ``train`` is the sweep, one job per parameter set, each an MLflow run (parameters,
   metrics, the trial's name as a tag) that also writes its model to storage.
4. ``pick_best`` asks MLflow's REST API for this sweep's runs, best cross-validation
   accuracy first: MLflow, not storage, decides which model is served.
5. ``deploy``, ``predict`` and ``model_info`` serve that model and ask it, as in the base.
6. ``undeploy`` and ``stop_tracking`` stop both services, whatever happened before them.

The trials and the server use MLflow's image; on the local platform, map it to an
environment with MLflow and scikit-learn (``make demo-mlflow`` does, from
``constraints-mlflow.txt``). ``prepare`` and the model service keep ``python:3.11``.
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
# Apart from the base DAG's files: both DAGs can run side by side.
ROOT = "lifecycle-mlflow"
CODE, DATA, TRIALS, SERVER = f"{ROOT}/code", f"{ROOT}/data", f"{ROOT}/trials", f"{ROOT}/server"
# The tag is the MLflow version constraints-mlflow.txt pins (the Makefile maps this image).
MLFLOW_IMAGE = "ghcr.io/mlflow/mlflow:v3.17.2"
TRACKING = "mlflow-tracking"
SERVICE = "wine-model-mlflow"
EXPERIMENT = "wine-lifecycle"
# MLflow reports usage to its makers unless told not to; a demo's jobs should not.
QUIET = {"DO_NOT_TRACK": "true"}


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
    return {
        "job_command": (
            f"python /code/train.py --data /data --out /trials/{trial_id(params)}"
            f" --n-estimators {params['n_estimators']} --max-depth {params['max_depth']}"
            # How jobs reach the server: its internal URL, resolved inside every job.
            " --mlflow {{ ti.xcom_pull(task_ids='tracking_server')['internal_url'] }}"
            f" --experiment {EXPERIMENT} --tag airflow_run={{{{ run_id }}}}"
        ),
    }


def mlflow_api(
    hook: NeuroHook, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One call of the tracking server's REST API, through the platform by job name."""
    answer = hook.request(TRACKING, f"/api/2.0/mlflow/{path}", method=method, json=body)
    if not answer.ok:
        raise RuntimeError(f"MLflow: {method} {path} answered {answer.describe()}: {answer.head()}")
    result: dict[str, Any] = answer.value()
    return result


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """One run of MLflow's REST API as the base DAG's trial: name, parameters, metrics."""
    data = run["data"]
    params = {p["key"]: p["value"] for p in data.get("params", [])}
    metrics = {m["key"]: m["value"] for m in data.get("metrics", [])}
    return {
        "trial": next(t["value"] for t in data["tags"] if t["key"] == "trial"),
        "params": {
            "n_estimators": int(params["n_estimators"]),
            "max_depth": int(params["max_depth"]) or None,
        },
        "cv_accuracy": metrics["cv_accuracy"],
        "test_accuracy": metrics["test_accuracy"],
        "test_f1_macro": metrics["test_f1_macro"],
        "run_id": run["info"]["run_id"],
    }


with DAG(
    dag_id="neuro_model_lifecycle_mlflow",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"port": 18091, "mlflow_port": 18092, "rows": 8},
    tags=["neuro", "example", "lifecycle", "mlflow"],
) as dag:
    tracking = NeuroDeployOperator(
        task_id="tracking_server",
        job_name=TRACKING,
        job_image=MLFLOW_IMAGE,
        job_command=(
            "mlflow server --host 0.0.0.0 --port {{ params.mlflow_port }} --workers 1"
            " --backend-store-uri sqlite:////mlflow/mlflow.db"
            " --artifacts-destination /mlflow/artifacts"
            # MLflow refuses requests for host names it does not know (DNS rebinding):
            # the trials use the job's internal name, the platform's proxy a loopback one.
            f" --allowed-hosts localhost:*,127.0.0.1:*,{TRACKING}--*"
        ),
        job_volumes=[f"storage:{SERVER}:/mlflow:rw"],
        job_environ=QUIET,
        job_http_port="{{ params.mlflow_port }}",
        health_path="/health",
        ready_timeout=300,
        poll_interval=0.5,
    )

    code = publish_code(CODE)
    prepare = prepare_data(CODE, DATA)

    # Not cached, unlike the base DAG's sweep: a trial taken from the cache would log no
    # run, and MLflow is where this sweep's trials are compared. Each DAG run is one sweep
    # in MLflow, its runs tagged with the Airflow run's id.
    train = NeuroRunOperator.partial(
        task_id="train",
        job_image=MLFLOW_IMAGE,
        job_volumes=[
            f"storage:{CODE}:/code:ro",
            f"storage:{DATA}:/data:ro",
            f"storage:{TRIALS}:/trials:rw",
        ],
        job_environ=QUIET,
        job_detach=False,
        poll_interval=0.5,
    ).expand_kwargs([trial_job(params) for params in GRID])

    @task
    def pick_best(sweep: str) -> dict[str, Any]:
        """This sweep's runs from MLflow, best cross-validation accuracy first; the smaller
        forest wins a tie, as in the base DAG."""
        with NeuroHook() as hook:
            experiment = mlflow_api(
                hook, "GET", f"experiments/get-by-name?experiment_name={EXPERIMENT}"
            )["experiment"]
            found = mlflow_api(
                hook,
                "POST",
                "runs/search",
                {
                    "experiment_ids": [experiment["experiment_id"]],
                    "filter": f"tags.airflow_run = '{sweep}' and attributes.status = 'FINISHED'",
                    "order_by": ["metrics.cv_accuracy DESC"],
                    "max_results": 100,
                },
            )
        trials = [run_summary(run) for run in found.get("runs", [])]
        expected = sorted(trial_id(params) for params in GRID)
        if sorted(t["trial"] for t in trials) != expected:
            raise RuntimeError(
                f"MLflow has runs of {[t['trial'] for t in trials]} for this sweep,"
                f" not one of each of {expected}"
            )
        top = [t for t in trials if t["cv_accuracy"] == trials[0]["cv_accuracy"]]
        best = min(top, key=lambda t: t["params"]["n_estimators"])
        print_trials(trials, best)
        return {"best": best, "trials": trials, "experiment_id": experiment["experiment_id"]}

    chosen = pick_best("{{ run_id }}")
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
        chosen: dict[str, Any],
        tracking: dict[str, Any],
        service: dict[str, Any],
        answer: dict[str, Any],
        truth: list[int],
    ) -> dict[str, Any]:
        """What the run found, in the base DAG's shape (``airflow-neuro demo`` prints it),
        plus where MLflow keeps it."""
        return {
            **summary(chosen, service, answer, truth),
            "mlflow": {
                "server": tracking["http_url"],
                "experiment_id": chosen["experiment_id"],
                "best_run": chosen["best"]["run_id"],
                "runs": {t["trial"]: t["run_id"] for t in chosen["trials"]},
            },
        }

    undeploy = NeuroUndeployOperator(task_id="undeploy", job_name=SERVICE)
    stop_tracking = NeuroUndeployOperator(task_id="stop_tracking", job_name=TRACKING)

    code >> prepare >> train
    tracking >> train >> chosen >> deploy
    prepare >> rows
    deploy >> [predict, info]
    found = report(chosen, tracking.output, deploy.output, predict.output, rows["labels"])
    [predict, info, found] >> undeploy.as_teardown(setups=deploy)
    [chosen, found] >> stop_tracking.as_teardown(setups=tracking)
