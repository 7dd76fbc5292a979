#!/usr/bin/env bash
# Join a Ray worker node to the head at ADDRESS (HOST:6379).
#   environment/start-ray-worker.sh HEAD_HOST:6379 [NODE_IP]
set -euo pipefail
cd "$(dirname "$0")/.."
ADDRESS=${1:?usage: start-ray-worker.sh HEAD_HOST:6379 [NODE_IP]}
NODE_IP=${2:-127.0.0.1}
export RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
exec .venv/bin/ray start --address "$ADDRESS" --node-ip-address "$NODE_IP" --disable-usage-stats ${RAY_START_ARGS:-}
