#!/usr/bin/env bash
# One device. Any train.py flag passes through, e.g.
#   bash scripts/run_1p.sh --network=densenet121 --data_dir=/data/imagenet
# With no --data_dir on a machine without an NPU it trains DenseNet-121 briefly on the demo
# dataset (built on first use), evaluates every checkpoint and prints the table.
set -euo pipefail
export RANK_SIZE=1 RANK_ID=0
export DEVICE_ID=${DEVICE_ID:-0}
export JOB_ID=${JOB_ID:-10087}
exec bash "$(dirname "$0")/train_1p.sh" "$@"
