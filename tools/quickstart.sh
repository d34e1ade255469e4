#!/usr/bin/env bash
# One-command set-up and run, used by README's Quick start and by .ci/run.
#
#   bash tools/quickstart.sh test [pytest args]   set up .venv/ (if needed), run the test suite
#   bash tools/quickstart.sh demo                 set up .venv/ (if needed), train + evaluate on
#                                                 the embedded synthetic data set (CPU)
#
# Set-up creates .venv/ in the repository root with Python >= 3.9 (python3.11 preferred),
# installs torch (TORCH_SPEC, default the CPU wheel torch==2.13.0; an existing torch is kept),
# the requirements, and this package with its optional C++ NMS extension
# (pip install -e . --no-build-isolation). It is skipped when nothing it depends on changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cmd="${1:-test}"
shift || true
if [ "$cmd" = "-h" ] || [ "$cmd" = "--help" ]; then
  sed -n '4,11p' tools/quickstart.sh | sed 's/^# \{0,1\}//'
  exit 0
fi

VENV=.venv
PY_BOOT="${PYTHON:-}"
if [ -z "$PY_BOOT" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY_BOOT=python3.11; else PY_BOOT=python3; fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[quickstart] creating $VENV with $PY_BOOT"
  "$PY_BOOT" -m venv "$VENV"
fi
PY="$VENV/bin/python"

stamp="$VENV/.actionformer-setup"
want=$(cat setup.py requirements.txt libs/ops/csrc/*.cpp 2>/dev/null | sha256sum | cut -c1-32)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$PY" -c "import torch, libs" 2>/dev/null; then
  echo "[quickstart] installing dependencies into $VENV"
  "$PY" -m pip install -q --upgrade "pip>=23" "setuptools>=64" wheel
  if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  fi
  "$PY" -m pip install -q -r requirements.txt
  "$PY" -m pip install -q -e . --no-build-isolation
  echo "$want" > "$stamp"
fi

case "$cmd" in
  test)
    exec "$PY" -m pytest "$@"
    ;;
  demo)
    exec "$PY" tools/demo.py "$@"
    ;;
  *)
    echo "usage: bash tools/quickstart.sh {test|demo} [args]" >&2
    exit 2
    ;;
esac
