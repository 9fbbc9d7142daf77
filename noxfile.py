"""The version matrix: the suites on each supported Airflow with each platform SDK.

    nox                                  # every combination
    nox -s "tests(airflow='3.1.6', sdk='neuro')"
    nox -l                               # list them

Each combination installs from its own pinned constraints, with exactly one of the two
SDK distributions (both install the ``apolo_sdk`` package).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

# (Airflow, SDK extra) -> pinned constraints. 3.3.2 + neuro is the main environment (.venv).
MATRIX = {
    ("3.1.6", "neuro"): "constraints/airflow-3.1.6-neuro.txt",
    ("3.1.6", "apolo"): "constraints/airflow-3.1.6-apolo.txt",
    ("3.3.2", "neuro"): "constraints.txt",
    ("3.3.2", "apolo"): "constraints/airflow-3.3.2-apolo.txt",
}
SUITES = ("tests/unit", "tests/localplatform", "tests/integration", "tests/e2e")


@nox.session
@nox.parametrize(("airflow", "sdk"), list(MATRIX))
def tests(session: nox.Session, airflow: str, sdk: str) -> None:
    constraints = MATRIX[(airflow, sdk)]
    session.install("--quiet", "-c", constraints, "-e", f".[dev,{sdk}]")
    # Read from the package metadata: importing airflow would print its own log lines.
    version = "from importlib.metadata import version; print(version('apache-airflow'))"
    installed = session.run("python", "-c", version, silent=True)
    if str(installed).strip() != airflow:
        session.error(f"{constraints} installed Airflow {installed!s}, not {airflow}")
    # The MLflow example tests the example, and tests marked once the local platform alone,
    # not the Airflow or SDK version: make test runs them, once.
    session.run(
        "python", "-m", "pytest", "-p", "no:cacheprovider", "-m", "not mlflow and not once",
        *SUITES, *session.posargs,
    )  # fmt: skip
