#!/usr/bin/env bash
# The project's tests, including the slow ones on the real SmolLM2 model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The HTML report's browser test needs headless Chromium from Debian's packages; the test
# fails (never skips) without it.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium for the browser test"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/python -m ruff check probe tests models conftest.py
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest tests/ -p no:cacheprovider "$@"
