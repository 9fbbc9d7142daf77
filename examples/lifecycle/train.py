"""Train one trial of the sweep: a random forest on the wine training rows.

Five-fold cross-validation on the training rows gives the metric the sweep compares
(``cv_accuracy``); the held-out rows are scored once, for the report, never for choosing.
The folder ``--out`` gets ``metrics.json`` and ``model.pkl``.

With ``--mlflow URI`` the trial is also an MLflow run on that tracking server: its
parameters, metrics and files, tagged with the trial's name (the ``--out`` folder's) and
any ``--tag KEY=VALUE``. MLflow is imported only then, so the plain sweep needs no MLflow.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import time
from pathlib import Path
from typing import Any

from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_score


def read_rows(path: Path) -> tuple[list[str], list[list[float]], list[int]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [[float(v) for v in row] for row in reader]
    return header[:-1], [row[:-1] for row in rows], [int(row[-1]) for row in rows]


def log_to_mlflow(args: argparse.Namespace, metrics: dict[str, Any], folds: list[float]) -> str:
    """The trial as one MLflow run; returns its id."""
    import mlflow  # only here: the base environment has no MLflow

    mlflow.set_tracking_uri(args.mlflow)
    mlflow.set_experiment(args.experiment)
    tags = {"trial": args.out.name, **dict(tag.split("=", 1) for tag in args.tag)}
    with mlflow.start_run(run_name=args.out.name, tags=tags) as run:
        # Logged as given (0 is "no limit"): MLflow keeps parameters as text anyway.
        mlflow.log_params(
            {"n_estimators": args.n_estimators, "max_depth": args.max_depth, "seed": args.seed}
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, float)})
        for fold, score in enumerate(folds, 1):
            mlflow.log_metric("fold_accuracy", score, step=fold)
        # The storage copies stay what the service loads; these are for MLflow's UI.
        mlflow.log_artifact(str(args.out / "model.pkl"))
        mlflow.log_artifact(str(args.out / "metrics.json"))
        run_id: str = run.info.run_id
    return run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-estimators", type=int, required=True)
    parser.add_argument("--max-depth", type=int, required=True, help="0: no limit")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mlflow", metavar="URI", help="also log to this tracking server")
    parser.add_argument("--experiment", default="wine-lifecycle", help="MLflow experiment")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="MLflow run tag"
    )
    args = parser.parse_args()
    if any("=" not in tag for tag in args.tag):
        parser.error("--tag wants KEY=VALUE")

    features, x_train, y_train = read_rows(args.data / "train.csv")
    _, x_test, y_test = read_rows(args.data / "test.csv")
    params = {"n_estimators": args.n_estimators, "max_depth": args.max_depth or None}
    print(f"training a random forest {params} on {len(x_train)} rows")
    model = RandomForestClassifier(**params, random_state=args.seed)

    started = time.monotonic()
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=args.seed)
    scores = cross_val_score(model, x_train, y_train, cv=folds, scoring="accuracy")
    for fold, score in enumerate(scores, 1):
        print(f"fold {fold}/5: accuracy {score:.4f}")
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    metrics = {
        "params": params,
        "cv_accuracy": round(float(scores.mean()), 4),
        "test_accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "test_f1_macro": round(float(f1_score(y_test, predicted, average="macro")), 4),
        "train_seconds": round(time.monotonic() - started, 2),
    }
    print(
        f"cross-validation accuracy {metrics['cv_accuracy']:.4f},"
        f" held-out accuracy {metrics['test_accuracy']:.4f}"
    )

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "model.pkl").open("wb") as f:
        pickle.dump({"model": model, "features": features, "params": params}, f)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {args.out / 'model.pkl'} and {args.out / 'metrics.json'}")
    if args.mlflow:
        run_id = log_to_mlflow(args, metrics, [float(score) for score in scores])
        print(f"logged MLflow run {run_id} to {args.mlflow} (experiment {args.experiment})")


if __name__ == "__main__":
    main()
