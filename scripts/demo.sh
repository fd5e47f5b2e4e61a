#!/usr/bin/env bash
# The demo: does the demo LoRA's "unlearning" of country capitals survive rephrasing?
# Runs the suites on SmolLM2-135M-Instruct (base) vs models/demo-adapter (candidate).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
# Reports go to reports/ (git-ignored): JUnit XML, the JSON run record, the HTML report
# and the variant rows as a parquet dataset.
.venv/bin/python -m pytest suites/ -p no:cacheprovider \
  --probe-base smollm2-135m --probe-candidate models/demo-adapter \
  --junitxml reports/junit.xml --probe-json reports/run.json \
  --probe-html reports/report.html --probe-parquet reports/rows.parquet "$@"
status=$?
set -e
if [ "$status" -eq 1 ]; then
  echo
  echo "demo: exit status 1 means some probes FAILED: the suppressed behavior resurfaced"
  echo "demo: under rephrasing. That is what this demo adapter is built to show (README)."
  exit 0
fi
exit "$status"
