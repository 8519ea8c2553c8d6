#!/usr/bin/env bash
# Trains on device $DEVICE_ID; results and log in $RESULT_ROOT/1p/$DEVICE_ID/ (RESULT_ROOT
# defaults to result/). Never deletes anything: a second run resumes from the checkpoints there.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
device=${DEVICE_ID:-0}
out=${RESULT_ROOT:-$ROOT/result}/1p/$device
mkdir -p "$out"
log=$out/train_$device.log

demo=$(demo_flags "$@")
extra=()
if [ -n "$demo" ]; then
  echo "no --data_dir and no NPU: demo run on the bundled demo data (pass --data_dir=... for real data)"
  extra=("$demo")
fi

start=$(date +%s)
mark_run "$log"
status=0
"$PYTHON" train.py --rank_size=1 --log_dir="$out" "${extra[@]}" "$@" 2>&1 | tee -a "$log" \
  || status=$?
end=$(date +%s)
if [ "$status" -ne 0 ]; then
  echo "training failed (exit $status); log: $log"
  exit "$status"
fi
if [ -n "$demo" ]; then
  bash "$ROOT/scripts/test.sh" --eval_dir="$out" --log_dir="$out" "$@" 2>&1 | tee -a "$log"
fi
fps=$(last_fps "$log")
echo "Final Performance images/sec : ${fps:-n/a}"
echo "E2E Training Duration sec : $((end - start))"
echo "log: $log"
