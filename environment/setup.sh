#!/usr/bin/env bash
# Create .venv beside the project and install logwarden (editable) with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
.venv/bin/python -m pip install --quiet -e ".[test]"
touch .venv/.installed
echo "logwarden installed in $(pwd)/.venv"
