"""The regression file: variants a search found resurfacing, replayed first by every later run.

``probe search`` appends what it finds to ``suites/x.regressions.json`` (beside the
suite, out of suite collection), so a rephrasing that brought a behavior back on
one fine-tune is checked on every later one, like a fixed bug's regression test.
Each entry keeps the chain and seeds that made it, the models it was found on and
both completions. A run puts them right after the canonical prompt, labelled
operator and family ``regression``, so the report shows how they fare on this
candidate.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from probe.engine.lock import VariantSet, variant_from_json, variant_json
from probe.engine.variants import Variant
from probe.errors import SpecError
from probe.spec.model import Suite

REGRESSION_SUFFIX = ".regressions.json"
REGRESSION_VERSION = 1
REGRESSION = "regression"


def regression_path(suite_path: str | Path) -> Path:
    """``x.yaml`` -> ``x.regressions.json``."""
    path = Path(suite_path)
    return path.with_name(path.stem + REGRESSION_SUFFIX)


def _load(path: Path, shown: str) -> dict[str, Any]:
    if not path.is_file():
        return {"regression_version": REGRESSION_VERSION, "found": []}
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if data.get("regression_version") != REGRESSION_VERSION or not isinstance(
                data.get("found"), list):
            raise ValueError("not a regression file of this version")
        return data
    except (OSError, ValueError) as err:
        raise SpecError(f"the regression file cannot be read ({err}); fix or delete it",
                        file=shown) from None


def read_regressions(suite: Suite) -> dict[str, list[Variant]]:
    """Found variants per probe id (probes the suite no longer has are skipped)."""
    if not suite.path:
        return {}
    data = _load(regression_path(suite.path), str(regression_path(suite.source)))
    ids = {p.id for p in suite.probes}
    out: dict[str, list[Variant]] = {}
    try:
        for entry in data["found"]:
            if entry["probe"] in ids:
                v = variant_from_json(entry["variant"], entry["probe"], REGRESSION)
                out.setdefault(entry["probe"], []).append(
                    dataclasses.replace(v, operator=REGRESSION, family=REGRESSION))
    except (KeyError, TypeError, ValueError) as err:
        raise SpecError(f"the regression file is malformed ({type(err).__name__}: {err})",
                        file=str(regression_path(suite.source))) from None
    return out


def add_regression(suite: Suite, probe_id: str, variant: Variant, found_on: dict[str, str],
                   completions: dict[str, str], path: Path | None = None) -> Path:
    """Append ``variant`` (unless an entry with the same prompt exists); returns the path."""
    path = path or regression_path(suite.path)
    data = _load(path, str(path))
    record = variant_json(variant)
    for entry in data["found"]:
        old = entry["variant"]
        if entry["probe"] == probe_id and (old["text"], old["prefill"], old["chat"]) == (
                record["text"], record["prefill"], record["chat"]):
            return path
    data["found"].append({"probe": probe_id, "variant": record, "found_on": found_on,
                          "completions": completions})
    from probe.files import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def with_regressions(sets: VariantSet, found: list[Variant]) -> VariantSet:
    """``sets`` with ``found`` right after the canonical prompt (duplicates kept once)."""
    canonical, rest = sets.kept[0], sets.kept[1:]
    seen = {canonical.prompt}
    ordered = [canonical]
    for v in [*found, *rest]:
        if v.prompt not in seen:
            seen.add(v.prompt)
            ordered.append(dataclasses.replace(v, index=len(ordered)))
    return VariantSet(tuple(ordered), sets.rejected)
