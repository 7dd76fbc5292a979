#!/usr/bin/env bash
# Start the Ray head node of a logwarden cluster.
#   environment/start-ray-head.sh [HOST] [PORT]     (defaults: 127.0.0.1 6379)
# Dashboard on HOST:8265. Ray >= 2.59 enables token authentication; the token is kept in
# ~/.ray/auth_token (copy it to every node and to the machine running `logwarden up`, or set
# RAY_AUTH_TOKEN there). Then: logwarden up --ray-address HOST:PORT
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${1:-127.0.0.1}
PORT=${2:-6379}
export RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
exec .venv/bin/ray start --head --node-ip-address "$HOST" --port "$PORT" \
  --dashboard-host "$HOST" --dashboard-port 8265 --disable-usage-stats ${RAY_START_ARGS:-}
