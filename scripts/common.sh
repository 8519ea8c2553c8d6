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

# Each run script marks the start of its run in the per-device log (logs are appended to, so
# that a resumed run keeps its history); the summary reads only the lines after the mark.
RUN_MARK='=== run started'
mark_run() { echo "$RUN_MARK $(date -u '+%Y-%m-%d %H:%M:%S') UTC ===" >> "$1"; }

# last_fps LOG...: images/sec of this run's summary line (none when this run trained nothing).
last_fps() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    awk -v mark="$RUN_MARK" 'index($0, mark) == 1 { fps = "" }
      match($0, /images\/sec=[0-9.]+/) { fps = substr($0, RSTART + 11, RLENGTH - 11) }
      END { if (fps != "") print fps }' "$f"
  done | tail -n 1
}
