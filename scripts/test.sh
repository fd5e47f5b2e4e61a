#!/usr/bin/env bash
# The project's tests, including the slow ones on the real SmolLM2 model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check probe tests models conftest.py
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest tests/ -p no:cacheprovider "$@"
