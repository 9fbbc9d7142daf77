#!/usr/bin/env bash
# Resolve fresh environments from the loose requirements and pin what they got.
set -euo pipefail
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/main"
"$tmp/main/bin/pip" install --quiet -e '.[dev,neuro]'
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
# The other combinations of the version matrix (constraints/airflow-*.txt) pin an older
# Airflow or the other SDK; they are re-resolved by hand, as their headers say.
