# Sourced by the run scripts: repository root, the Python to use, whether to run the demo.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi

# has_flag NAME ARGS...: whether --NAME=... is among ARGS
has_flag() {
  local name=$1 arg; shift
  for arg in "$@"; do [[ $arg == --$name=* || $arg == --$name ]] && return 0; done
  return 1
}

npu_present() { "$PYTHON" -c 'import npu_bridge' >/dev/null 2>&1; }

# Prints --demo when the user gave no --data_dir and there is no NPU; nothing otherwise.
# train.py --demo picks the demo data and its settings (common/demo.py).
demo_flags() {
  has_flag data_dir "$@" && return 0
  npu_present && return 0
  echo "--demo"
}
