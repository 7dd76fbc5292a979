#!/usr/bin/env bash
# Start Dask workers for the scheduler at ADDRESS (runs in the foreground).
#   environment/start-dask-worker.sh tcp://SCHEDULER_HOST:8786 [NWORKERS] [HOST]
# Workers read spool batches and write the lake: every worker must see the same --data-dir
# path (a shared file system when workers run on other machines).
set -euo pipefail
cd "$(dirname "$0")/.."
ADDRESS=${1:?usage: start-dask-worker.sh tcp://SCHEDULER_HOST:8786 [NWORKERS] [HOST]}
NWORKERS=${2:-2}
HOST=${3:-127.0.0.1}
exec .venv/bin/dask worker "$ADDRESS" --nworkers "$NWORKERS" --nthreads 1 --host "$HOST"
