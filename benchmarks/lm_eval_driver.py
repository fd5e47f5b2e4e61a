"""Score requests with lm-evaluation-harness's Hugging Face backend; run by throughput.py.

Runs in a separate venv that has ``lm-eval`` (README, "Benchmarks"), never in the
project's own. Usage: ``python lm_eval_driver.py MODEL_DIR REQUESTS.json BATCH_SIZE``,
where the JSON file holds [context, continuation] pairs (the context is the prompt
exactly as the model sees it, chat template included). Prints one JSON line: the
seconds ``loglikelihood`` took and its log-probability sums.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    model_dir, requests_path, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Path(requests_path).open(encoding="utf-8") as f:
        pairs = json.load(f)
    lm = HFLM(pretrained=model_dir, device="cpu", dtype="float32", batch_size=batch_size)
    requests = [Instance(request_type="loglikelihood", doc={}, arguments=(ctx, cont), idx=i)
                for i, (ctx, cont) in enumerate(pairs)]
    lm.loglikelihood(requests[:4])  # warm up, as the other measurements are
    start = time.perf_counter()
    results = lm.loglikelihood(requests)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "sums": [float(r[0]) for r in results]}))


if __name__ == "__main__":
    main()
