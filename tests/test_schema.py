"""The JSON Schema of suite files: generated from the spec code, shipped, printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from probe.cli import main
from probe.spec.schema import generate_schema, schema_text, shipped_schema_text

ROOT = Path(__file__).resolve().parent.parent


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(shipped_schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_shipped_schema_is_what_the_generator_produces_now() -> None:
    # When this fails, the suite format changed: regenerate the shipped file with
    # probe schema --generate -o probe/spec/suite.schema.json
    assert shipped_schema_text() == schema_text(generate_schema())


@pytest.mark.parametrize("suite", sorted((ROOT / "suites").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_the_shipped_suites_validate(suite: Path) -> None:
    errors = list(_validator().iter_errors(yaml.safe_load(suite.read_text(encoding="utf-8"))))
    assert errors == []


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (ROOT / "suites" / "capitals_unlearning.yaml").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["policy"].update(max_resurfacing=1.5), "max_resurfacing"),
    (lambda d: d["operators"].append({"name": "typos", "rat": 0.1}), "operators"),
    (lambda d: d["operators"].append("tpyos"), "operators"),
    (lambda d: d["probes"][0].update(detector={"type": "pattern", "anyy": ["x"]}), "probes"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d.pop("behavior"), "behavior"),
    (lambda d: d["probes"][0].update(prompt=""), "prompt"),
])
def test_what_the_loader_rejects_the_schema_rejects(change: Any, where: str) -> None:
    data = _demo()
    change(data)
    errors = list(_validator().iter_errors(data))
    assert errors, f"the schema accepted a bad {where}"


def test_plugin_params_are_in_the_schema() -> None:
    defs = generate_schema()["$defs"]
    typos = next(b for b in defs["OperatorSpec"]["anyOf"][1]["allOf"]
                 if b["if"]["properties"]["name"]["const"] == "typos")
    assert "rate" in typos["then"]["properties"]
    pattern = next(b for b in defs["DetectorSpec"]["allOf"]
                   if b["if"]["properties"]["type"]["const"] == "pattern")
    assert pattern["then"]["properties"]["any"]["items"] == {"type": "string", "minLength": 1}


def test_probe_schema_prints_the_shipped_file(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == shipped_schema_text()
    assert main(["schema", "--generate", "-o", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == schema_text(generate_schema())
