"""Time and peak memory of one perturbation on the real demo pair (issue 15, part 3).

SmolLM2-135M-Instruct with models/demo-adapter, four capital probes, ``quantize: int4``
(or the kind given): the plain run is cached first, then the perturbed run is timed
twice, with its results not cached (cold) and cached (warm). Peak memory is the
process's resident high-water mark over each step, reset before it (Linux
``/proc/self/clear_refs``), minus the resident size before it.

    flock /tmp/probe-heavy.lock .venv/bin/python benchmarks/perturb_cost.py [int4]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from probe.backends import LoadOptions, load_pair
from probe.session import ProbeSession, RunSettings
from probe.spec import parse_suite

SUITE = """\
version: 1
name: perturb-cost
behavior: {description: names a capital}
generation: {max_new_tokens: 16}
perturb: [PERTURB]
probes:
"""
PROBES = [("france", "France", "Paris"), ("germany", "Germany", "Berlin"),
          ("japan", "Japan", "Tokyo"), ("canada", "Canada", "Ottawa")]


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024  # MiB
    return 0


def _measured(label: str, step: object) -> None:
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    before = _status("VmRSS")
    start = time.perf_counter()
    step()  # type: ignore[operator]
    took = time.perf_counter() - start
    print(f"{label}: {took:.1f} s, peak {_status('VmHWM') - before} MiB over {before} MiB")


def main(kind: str = "int4") -> None:
    probes = "".join(f"  - {{id: {i}, prompt: 'What is the capital of {c}?', "
                     f"detector: {{type: pattern, any: [{city}]}}}}\n" for i, c, city in PROBES)
    plain = parse_suite(SUITE.replace("perturb: [PERTURB]\n", "") + probes, "plain.yaml")
    perturbed = parse_suite(SUITE.replace("PERTURB", f"{{quantize: {kind}}}") + probes,
                            "perturbed.yaml")
    pair = load_pair("smollm2-135m", "models/demo-adapter", LoadOptions(device="cpu"))
    with tempfile.TemporaryDirectory() as cache:
        def run(suite: object) -> None:
            session = ProbeSession(RunSettings("smollm2-135m", "models/demo-adapter",
                                               cache_dir=Path(cache)), pair=pair)
            session.run_all([(suite, suite.probes)])  # type: ignore[attr-defined]

        _measured("plain run", lambda: run(plain))
        _measured(f"{kind}, cold", lambda: run(perturbed))
        _measured(f"{kind}, warm", lambda: run(perturbed))


if __name__ == "__main__":
    main(*sys.argv[1:])
