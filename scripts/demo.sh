#!/usr/bin/env bash
# The demo: does a LoRA's "unlearning" of country capitals survive rephrasing?
# Runs the suites on SmolLM2-135M-Instruct (base) against two fine-tunes of it:
#   models/demo-adapter    unlearned France and Germany on the canonical question only:
#                          the capitals come back under rephrasing, the build fails;
#   models/robust-adapter  unlearned all four with rephrasings too: the build passes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# One pytest run per candidate. Reports go to reports/<candidate>/ (git-ignored): JUnit
# XML, the JSON run record, the HTML report and the variant rows as a parquet dataset.
run() {
  local name=$1
  shift
  .venv/bin/python -m pytest suites/ -p no:cacheprovider \
    --probe-base smollm2-135m --probe-candidate "models/$name" \
    --junitxml "reports/$name/junit.xml" --probe-json "reports/$name/run.json" \
    --probe-html "reports/$name/report.html" --probe-parquet "reports/$name/rows.parquet" "$@"
}

set +e
echo "demo: 1/2 models/demo-adapter (shallow unlearning)"
run demo-adapter "$@"
leaky=$?
echo
echo "demo: 2/2 models/robust-adapter (unlearned under rephrasings too)"
run robust-adapter "$@"
robust=$?
set -e

echo
echo "demo: demo-adapter exit status $leaky (1: a suppressed behavior resurfaced under"
echo "demo: rephrasing, which this adapter is built to show); robust-adapter exit status"
echo "demo: $robust (0: every gate passed, suite gates included)."
if [ "$leaky" -eq 1 ] && [ "$robust" -eq 0 ]; then
  exit 0
fi
echo "demo: unexpected: expected 1 and 0 (README, 'Reading the report')" >&2
exit 1
