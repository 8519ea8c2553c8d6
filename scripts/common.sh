# Sourced by the run scripts: repository root, the Python to use, demo-data defaults.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
DEMO_DIR=$ROOT/demo_data

# has_flag NAME ARGS...: whether --NAME=... is among ARGS
has_flag() {
  local name=$1 arg; shift
  for arg in "$@"; do [[ $arg == --$name=* || $arg == --$name ]] && return 0; done
  return 1
}

npu_present() { "$PYTHON" -c 'import npu_bridge' >/dev/null 2>&1; }

# Prints the flags of the demo run (and builds the demo data once) when the user gave no
# --data_dir and there is no NPU; prints nothing otherwise.
demo_flags() {
  has_flag data_dir "$@" && return 0
  npu_present && return 0
  if [ ! -f "$DEMO_DIR/dataset.json" ]; then
    "$PYTHON" -m tfrecord_tools.build_demo_dataset --output_dir="$DEMO_DIR" >&2 || return 1
  fi
  echo "--data_dir=$DEMO_DIR --num_classes=10 --image_size=32"
}
