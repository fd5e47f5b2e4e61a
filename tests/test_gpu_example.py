"""The documented GPU workflow stays valid: it parses and uses only options that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "examples" / "gpu-after-finetune.yml"


def test_workflow_parses_and_uploads_the_reports() -> None:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = data["jobs"]["probe"]["steps"]
    names = [s.get("name", s.get("uses")) for s in steps]
    assert "run the probe suites" in names
    assert "upload the reports" in names
    upload = next(s for s in steps if s.get("name") == "upload the reports")
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "reports/"


def test_workflow_options_are_real(pytester: pytest.Pytester) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    used = set(re.findall(r"(--probe-[a-z-]+)", text))
    assert {"--probe-json", "--probe-html", "--probe-baseline", "--probe-base"} <= used
    help_text = pytester.runpytest("--help").stdout.str()
    assert sorted(o for o in used if o not in help_text) == []
