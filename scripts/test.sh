#!/usr/bin/env bash
# Evaluates every checkpoint in a directory (or one checkpoint prefix) and prints the table:
#   bash scripts/test.sh --eval_dir=result/1p/0 --data_dir=/data/imagenet [train.py flags]
# Without --data_dir on a machine without an NPU it uses the demo dataset.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
# shellcheck disable=SC2046
exec "$PYTHON" train.py $(demo_flags "$@") "$@" --mode=evaluate
