#!/usr/bin/env bash
# Resolve fresh environments from the loose requirements and pin what they got.
set -euo pipefail
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/main"
"$tmp/main/bin/pip" install --quiet -e '.[dev,neuro,celery]'
{
  echo "# Pinned versions for the main environment (Airflow + neuro-sdk + dev tools)."
  echo "# Regenerate on purpose: make constraints"
  "$tmp/main/bin/pip" freeze --exclude-editable | grep -v '^airflow-neuro' | sort -f
} > constraints.txt
"$python" -m venv "$tmp/apolo"
"$tmp/apolo/bin/pip" install --quiet apolo-sdk apolo-cli apolo-flow pytest pytest-asyncio pytest-timeout
{
  echo "# Pinned versions for the apolo-sdk / apolo-cli / apolo-flow test environment."
  echo "# Regenerate on purpose: make constraints"
  "$tmp/apolo/bin/pip" freeze --exclude-editable | sort -f
} > constraints-apolo.txt
"$python" -m venv "$tmp/jobs"
"$tmp/jobs/bin/pip" install --quiet scikit-learn
{
  echo "# Pinned versions for the examples' job runtime on the local platform (the image"
  echo "# python:3.11 maps to .venv-jobs). Regenerate on purpose: make constraints"
  "$tmp/jobs/bin/pip" freeze | sort -f
} > constraints-jobs.txt
# The MLflow variant's runtime (opt-in, make venv-mlflow). Resolved within the jobs' pins:
# its trials pickle models that the service unpickles with .venv-jobs' scikit-learn.
"$python" -m venv "$tmp/mlflow"
"$tmp/mlflow/bin/pip" install --quiet -c constraints-jobs.txt mlflow scikit-learn
{
  echo "# Pinned versions for the MLflow jobs' runtime on the local platform (the image"
  echo "# ghcr.io/mlflow/mlflow:v<mlflow's version> maps to .venv-mlflow), resolved with"
  echo "# constraints-jobs.txt so both runtimes have the same scikit-learn (a trial's pickled"
  echo "# model is served from .venv-jobs). Regenerate on purpose: make constraints"
  "$tmp/mlflow/bin/pip" freeze | sort -f
} > constraints-mlflow.txt
# The example DAG names the image, tag included; the Makefile derives it from the pin.
mlflow_version=$(sed -n 's/^mlflow==//p' constraints-mlflow.txt)
if ! grep -q "ghcr.io/mlflow/mlflow:v$mlflow_version\"" examples/dags/neuro_model_lifecycle_mlflow.py; then
  echo "MLflow is now $mlflow_version: set MLFLOW_IMAGE in" \
    "examples/dags/neuro_model_lifecycle_mlflow.py to ghcr.io/mlflow/mlflow:v$mlflow_version" >&2
fi
# The other combinations of the version matrix (constraints/airflow-*.txt) pin an older
# Airflow or the other SDK; they are re-resolved by hand, as their headers say.
