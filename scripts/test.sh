#!/usr/bin/env bash
# The project's tests, including the slow ones on the real SmolLM2 model, then the vLLM
# engine's tests in their own venv (.venv-vllm: vLLM pins another transformers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The vLLM venv installs in the background while the main venv's checks run: mostly
# download and unpacking, which the test run's two workers do not need.
vllm_log=$(mktemp)
bash scripts/setup-vllm.sh >"$vllm_log" 2>&1 &
vllm_setup=$!
# The HTML report's browser test needs headless Chromium from Debian's packages; the test
# fails (never skips) without it.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium for the browser test"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/python -m ruff check probe tests models benchmarks conftest.py
.venv/bin/python -m mypy
# Two workers for the machine's two cores, one thread each (tests/conftest.py); loadgroup
# keeps each real-model module on one worker and the shipped-suite runs on one cache.
status=0
.venv/bin/python -m pytest tests/ -p no:cacheprovider -n 2 --dist loadgroup -m "not vllm" \
  "$@" || status=$?
if ! wait "$vllm_setup"; then
  cat "$vllm_log" >&2
  echo "test: setting up .venv-vllm failed" >&2
  exit 1
fi
cat "$vllm_log"
# The vLLM tests (marker vllm): the engine in process and behind a loopback server.
.venv-vllm/bin/python -m pytest tests/engines -p no:cacheprovider -m vllm "$@" || status=$?
exit "$status"
