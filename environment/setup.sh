#!/usr/bin/env bash
# Create .venv beside the project and install logwarden (editable) with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
# compat mode puts the project folder on sys.path, so our regular packages win over
# same-named folders on sys.path (Dask workers add their scratch folder, which holds "storage/").
.venv/bin/python -m pip install --quiet -e ".[test]" --config-settings editable_mode=compat
touch .venv/.installed
echo "logwarden installed in $(pwd)/.venv"
