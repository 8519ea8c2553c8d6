#!/usr/bin/env bash
# One rank of a multi-device job (started by run_8p.sh, or by horovodrun). Its output goes to
# $RESULT_ROOT/8p/<device>/train_<device>.log; the job's checkpoints to $RESULT_ROOT/8p.
# Never deletes anything: a second run resumes from the checkpoints there.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
if [ -n "${ZOO_ARGS_FILE:-}" ]; then  # flags from run_8p.sh, when started by horovodrun
  mapfile -d '' -t args < "$ZOO_ARGS_FILE"
  set -- "${args[@]}"
fi
device=${DEVICE_ID:-${HOROVOD_LOCAL_RANK:-0}}
rank_size=${RANK_SIZE:-${HOROVOD_SIZE:-1}}
out=${RESULT_ROOT:-$ROOT/result}/8p
mkdir -p "$out/$device"
log=$out/$device/train_$device.log

mark_run "$log"
# shellcheck disable=SC2046
"$PYTHON" train.py --rank_size="$rank_size" --log_dir="$out" $(demo_flags "$@") "$@" >> "$log" 2>&1
