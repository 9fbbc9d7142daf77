# Every target sets up what it needs: virtualenvs from the pinned constraints, and
# bubblewrap (the local platform runs every job in its sandbox) where apt-get can install it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
APOLO_VENV := .venv-apolo
NOX_VENV := .venv-nox
# The examples' jobs run here on the local platform: the image python:3.11 maps to it.
JOBS_VENV := .venv-jobs
# The MLflow variant's jobs (tracking server and trials) use MLflow's official image, which
# maps to this environment; the image's tag is the MLflow version constraints-mlflow.txt pins.
MLFLOW_VENV := .venv-mlflow
MLFLOW_IMAGE := ghcr.io/mlflow/mlflow:v$(shell sed -n 's/^mlflow==//p' constraints-mlflow.txt)
DEMO_DIR := .demo
PY := $(VENV)/bin/python
APOLO_PY := $(APOLO_VENV)/bin/python
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: all demo demo-mlflow e2e test test-main test-apolo lint system-packages venv venv-apolo venv-jobs venv-mlflow constraints bench clean matrix matrix-others

all: test

$(VENV)/.installed: constraints.txt setup.cfg pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev,neuro,celery]'
	touch $@

# apolo-sdk and neuro-sdk both install the apolo_sdk package, so they cannot share a venv.
$(APOLO_VENV)/.installed: constraints-apolo.txt setup.cfg pyproject.toml
	rm -rf $(APOLO_VENV)
	$(PYTHON) -m venv $(APOLO_VENV)
	$(APOLO_PY) -m pip install $(PIP_FLAGS) -c constraints-apolo.txt \
		apolo-sdk apolo-cli apolo-flow pytest pytest-asyncio pytest-timeout
	$(APOLO_PY) -m pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

$(JOBS_VENV)/.installed: constraints-jobs.txt
	rm -rf $(JOBS_VENV)
	$(PYTHON) -m venv $(JOBS_VENV)
	$(JOBS_VENV)/bin/pip install $(PIP_FLAGS) -c constraints-jobs.txt scikit-learn
	touch $@

# About 90 packages (MLflow's server included), for `make demo-mlflow` and the tests marked
# mlflow: `make test` runs them once, in the main suite (the version matrix leaves them out).
$(MLFLOW_VENV)/.installed: constraints-mlflow.txt
	rm -rf $(MLFLOW_VENV)
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install $(PIP_FLAGS) -c constraints-mlflow.txt mlflow scikit-learn
	touch $@

$(NOX_VENV)/.installed: constraints/nox.txt
	rm -rf $(NOX_VENV)
	$(PYTHON) -m venv $(NOX_VENV)
	$(NOX_VENV)/bin/pip install $(PIP_FLAGS) -c constraints/nox.txt nox
	touch $@

venv: $(VENV)/.installed
venv-apolo: $(APOLO_VENV)/.installed
venv-jobs: $(JOBS_VENV)/.installed
venv-mlflow: $(MLFLOW_VENV)/.installed

system-packages:
	@./scripts/ensure-system-packages.sh bubblewrap

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-main: venv venv-apolo venv-jobs venv-mlflow system-packages
	$(PY) -m pytest

test-apolo: venv-apolo system-packages
	$(APOLO_PY) -m pytest -c tests/apolo/pytest.ini tests/apolo

test: lint test-main test-apolo

# Real deployments: PostgreSQL, scheduler, triggerer, dag-processor and API server, with the
# LocalExecutor and with the CeleryExecutor (Redis and two Celery workers).
e2e: venv system-packages
	@./scripts/ensure-system-packages.sh postgresql redis
	$(PY) -m pytest tests/deployment

# The version matrix (noxfile.py): unit, local platform, integration and e2e suites on each
# supported Airflow with each SDK, every combination from its own pinned constraints
# (.venv-apolo too: the e2e suite compares its jobs with those apolo-flow starts).
matrix: $(NOX_VENV)/.installed venv-apolo venv-jobs system-packages
	./scripts/run-sessions.sh $(NOX_VENV)/bin/nox "tests(airflow='3.3.2', sdk='neuro')" \
		"tests(airflow='3.1.6', sdk='neuro')" "tests(airflow='3.1.6', sdk='apolo')" \
		"tests(airflow='3.3.2', sdk='apolo')"

# What `make test` does not already cover: every combination but Airflow 3.3.2 + neuro-sdk,
# two at a time (scripts/run-sessions.sh says why).
matrix-others: $(NOX_VENV)/.installed venv-apolo venv-jobs system-packages
	./scripts/run-sessions.sh $(NOX_VENV)/bin/nox "tests(airflow='3.1.6', sdk='neuro')" \
		"tests(airflow='3.1.6', sdk='apolo')" "tests(airflow='3.3.2', sdk='apolo')"

# The main job: the local platform and an example DAG, end to end in real Airflow.
demo: venv venv-jobs system-packages
	$(VENV)/bin/airflow-neuro demo --dag-id neuro_model_lifecycle --dags-folder examples/dags \
		--data-dir $(DEMO_DIR)/platform --runtime python:3.11=$(JOBS_VENV)

# The same lifecycle with an MLflow tracking server as a platform job (docs/lifecycle.md).
demo-mlflow: venv venv-jobs venv-mlflow system-packages
	$(VENV)/bin/airflow-neuro demo --dag-id neuro_model_lifecycle_mlflow --dags-folder examples/dags \
		--data-dir $(DEMO_DIR)/platform-mlflow --runtime python:3.11=$(JOBS_VENV) \
		--runtime $(MLFLOW_IMAGE)=$(MLFLOW_VENV)

# Each writes its table into docs/benchmarks.md; together about 15 minutes.
bench: venv venv-apolo system-packages
	$(PY) bench/platform_jobs.py
	$(PY) bench/task_overhead.py
	$(PY) bench/log_throughput.py
	$(PY) bench/triggers_scale.py
	$(PY) bench/serving.py

# Re-pin on purpose: resolves the newest allowed versions and rewrites both files.
constraints:
	./scripts/update-constraints.sh

clean:
	rm -rf $(VENV) $(APOLO_VENV) $(JOBS_VENV) $(MLFLOW_VENV) $(NOX_VENV) $(DEMO_DIR) .nox .mypy_cache .ruff_cache .pytest_cache
