#!/usr/bin/env bash
# The project's tests, including the slow ones on the real SmolLM2 model, and beside them
# the vLLM engine's tests in their own venv (.venv-vllm: vLLM pins another transformers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The vLLM venv installs, and then its tests (marker vllm: the engine in process and
# behind a loopback server) run, in the background while the main venv's checks run: the
# install is mostly download and unpacking, and the main run's two workers leave CPU
# idle at its start and end. Passive OpenMP waits: three busy processes share 2 cores.
vllm_log=$(mktemp)
(bash scripts/setup-vllm.sh && echo "test: running the vLLM tests" &&
   OMP_WAIT_POLICY=PASSIVE PROBE_TEST_VENV=vllm .venv-vllm/bin/python -m pytest tests/engines \
     -p no:cacheprovider "$@") >"$vllm_log" 2>&1 &
vllm_job=$!
# A failing lint or type check ends the script: stop the background job with it. (Every
# command here must succeed: under set -e a failing one would set the script's status.)
trap 'pkill -P "$vllm_job" 2>/dev/null || true; kill "$vllm_job" 2>/dev/null || true' EXIT
# The HTML report's browser test needs headless Chromium from Debian's packages; the test
# fails (never skips) without it.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium for the browser test"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/python -m ruff check probe tests models benchmarks conftest.py
.venv/bin/python -m mypy
# Two workers for the machine's two cores, one thread each (tests/conftest.py); loadfile
# keeps each module on one worker: its real model loads once, and the shipped-suite runs
# share one cache in order.
status=0
# PROBE_TEST_VENV (tests/conftest.py): this run leaves the tests marked vllm to the other.
PROBE_TEST_VENV=main .venv/bin/python -m pytest tests/ -p no:cacheprovider -n 2 \
  --dist loadfile "$@" || status=$?
vllm_status=0
wait "$vllm_job" || vllm_status=$?
trap - EXIT
cat "$vllm_log"
if [ "$vllm_status" != 0 ]; then
  echo "test: the vLLM setup or tests failed (exit $vllm_status)" >&2
  status=1
fi
exit "$status"
