#!/usr/bin/env bash
# Creates a Python 3.7 virtualenv and installs the project with a TensorFlow extra.
#   bash scripts/make_venv.sh VENV_DIR intel|stock|gpu
set -euo pipefail
venv=${1:-.venv}
extra=${2:-intel}

find_python37() {
  if python3.7 -c 'import sys; assert sys.version_info[:2] == (3, 7)' 2>/dev/null; then
    command -v python3.7; return 0
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local v
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.7(\.|$)' | sort -rV); do
      PYENV_VERSION=$v pyenv which python 2>/dev/null && return 0
    done
  fi
  return 1
}

if ! py=$(find_python37); then
  echo "error: Python 3.7 not found (TensorFlow 1.15 needs 3.5-3.7); install it, e.g." \
       "'pyenv install 3.7.16', or put python3.7 on PATH" >&2
  exit 1
fi
echo "creating $venv with $py"
"$py" -m venv --clear "$venv"  # a clean venv: two TensorFlow builds must not mix
"$venv/bin/pip" install -q --upgrade 'pip<24' 'setuptools<68' wheel
"$venv/bin/pip" install -q -e ".[$extra,test,demo]"
