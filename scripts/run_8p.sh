#!/usr/bin/env bash
# Several devices. Any train.py flag passes through, e.g.
#   bash scripts/run_8p.sh --network=densenet121 --data_dir=/data/imagenet
# Ascend: one process per device that the HCCL rank table RANK_TABLE_FILE (default
#   scripts/8p.json) lists for this server; with several servers, run this on each (the
#   server is found by its address, or set SERVER_INDEX).
# Elsewhere: RANK_SIZE (default 8) Horovod processes on this machine through horovodrun.
# Checkpoints, hparams.json and train.log go to $RESULT_ROOT/8p (default result/8p, written
# by rank 0 only, shared by all ranks); each device's output to $RESULT_ROOT/8p/<device>/.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
export JOB_ID=${JOB_ID:-10087}
out=${RESULT_ROOT:-$ROOT/result}/8p
start=$(date +%s)
if [ -n "$(demo_flags "$@")" ]; then  # build the demo data once, before the ranks start
  "$PYTHON" -c 'from common import demo; demo.data_dir()'
fi

if npu_present; then
  export RANK_TABLE_FILE=${RANK_TABLE_FILE:-$ROOT/scripts/8p.json}
  export HCCL_CONNECT_TIMEOUT=${HCCL_CONNECT_TIMEOUT:-600}
  plan=$("$PYTHON" -m common.rank_table --table="$RANK_TABLE_FILE" \
         ${SERVER_INDEX:+--server_index="$SERVER_INDEX"} ${RANK_SIZE:+--rank_size="$RANK_SIZE"}) \
    || exit 2
  RANK_SIZE=$(head -n 1 <<< "$plan" | cut -d' ' -f2)
  export RANK_SIZE
  pids=() devices=() ranks=()
  while read -r device rank; do
    DEVICE_ID=$device RANK_ID=$rank bash "$ROOT/scripts/train_8p.sh" "$@" &
    pids+=($!) devices+=("$device") ranks+=("$rank")
  done < <(tail -n +2 <<< "$plan")
  echo "started ${#pids[@]} of $RANK_SIZE ranks on this server (devices ${devices[*]})"
  failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "rank ${ranks[$i]} (device ${devices[$i]}) failed"
      failed=1
    fi
  done
else
  if ! "$PYTHON" -c 'import horovod.tensorflow' >/dev/null 2>&1; then
    echo "error: no NPU here, and multi-process training elsewhere needs Horovod: pip install" \
         "-e '.[horovod]' with HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 (README)" >&2
    exit 2
  fi
  export RANK_SIZE=${RANK_SIZE:-8}
  horovodrun=$(dirname "$PYTHON")/horovodrun
  [ -x "$horovodrun" ] || horovodrun=horovodrun
  failed=0
  # horovodrun would parse our flags as its own: the ranks read them from a file instead.
  ZOO_ARGS_FILE=$(mktemp)
  export ZOO_ARGS_FILE
  printf '%s\0' "$@" > "$ZOO_ARGS_FILE"
  # Gloo runs the collectives' control plane; GPU builds do the allreduce with NCCL.
  "$horovodrun" --gloo -np "$RANK_SIZE" -H "localhost:$RANK_SIZE" \
    bash "$ROOT/scripts/train_8p.sh" || failed=1
  rm -f "$ZOO_ARGS_FILE"
  devices=()
  for ((i = 0; i < RANK_SIZE; i++)); do devices+=("$i"); done
fi
end=$(date +%s)

for device in "${devices[@]}"; do echo "log of device $device: $out/$device/train_$device.log"; done
fps=$(last_fps "$out"/*/train_*.log)
echo "Final Performance images/sec : ${fps:-n/a}"
echo "E2E Training Duration sec : $((end - start))"
if [ "$failed" -ne 0 ]; then
  echo "error: at least one rank failed; see its log above" >&2
  exit 1
fi
