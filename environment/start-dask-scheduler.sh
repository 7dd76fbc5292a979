#!/usr/bin/env bash
# Start the Dask scheduler of a logwarden cluster (runs in the foreground).
#   environment/start-dask-scheduler.sh [HOST] [PORT]   (defaults: 127.0.0.1 8786; dashboard HOST:8787)
# Then: logwarden up --dask-scheduler tcp://HOST:PORT
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${1:-127.0.0.1}
PORT=${2:-8786}
exec .venv/bin/dask scheduler --host "$HOST" --port "$PORT" --dashboard-address "$HOST:8787"
