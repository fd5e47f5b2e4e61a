"""The malformed-suite corpus: every hand-written bad suite gives one located error.

``tests/data/malformed/*.yaml`` are written by hand, one mistake each;
``expected.json`` beside them gives, for each file, the line, the key path and a
fragment of the message. Each case is checked three ways: the loader, ``probe
check`` (exit 2, one line per file, no traceback) and pytest collection (a
collection error showing only the message).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from probe.errors import SpecError
from probe.spec import load_suite, parse_suite
from probe.spec.load import MAX_SUITE_BYTES
from tests.conftest import write_script

CORPUS = Path(__file__).parent / "data" / "malformed"
EXPECTED: dict[str, dict[str, object]] = json.loads(
    (CORPUS / "expected.json").read_text(encoding="utf-8"))
ROOT = Path(__file__).parent.parent


def expected_prefix(display: str, case: dict[str, object]) -> str:
    """``file:line: path: `` as the error must start."""
    path = f"{case['path']}: " if case["path"] else ""
    return f"{display}:{case['line']}: {path}"


def test_the_corpus_is_complete() -> None:
    files = sorted(p.name for p in CORPUS.glob("*.yaml"))
    assert files == sorted(EXPECTED)
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_case_gives_its_located_error(name: str) -> None:
    case = EXPECTED[name]
    with pytest.raises(SpecError) as info:
        load_suite(CORPUS / name, name)
    err = info.value
    assert (err.line, err.path) == (case["line"], case["path"])
    assert str(case["error"]) in err.message
    assert str(err).startswith(expected_prefix(name, case))
    assert "\n" not in str(err)


def test_probe_check_reports_every_file_once_without_a_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "probe.cli", "check", str(CORPUS)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == len(EXPECTED)
    for name, case in EXPECTED.items():
        prefix = "error: " + expected_prefix(str(CORPUS / name), case)
        matching = [line for line in lines if line.startswith(prefix)]
        assert len(matching) == 1, (name, prefix)
        assert str(case["error"]) in matching[0]


def collection_errors(output: str) -> dict[str, list[str]]:
    """Each ``ERROR collecting FILE`` section of pytest's output, as its non-blank lines."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        header = re.fullmatch(r"_+ ERROR collecting (\S+) _+", line)
        if header:
            current = sections.setdefault(header[1], [])
        elif re.fullmatch(r"=+ .* =+", line):
            current = None
        elif current is not None and line.strip():
            current.append(line)
    return sections


def test_every_case_is_a_collection_error_showing_only_the_message(
        pytester: pytest.Pytester) -> None:
    suites = pytester.path / "suites"
    suites.mkdir()
    for name in EXPECTED:
        shutil.copy(CORPUS / name, suites / name)
    write_script(pytester.path / "m.yaml", "m", [])
    result = pytester.runpytest("suites", "--collect-only", "--probe-base", "scripted:m.yaml",
                                "--probe-candidate", "scripted:m.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    sections = collection_errors(result.stdout.str())
    assert len(sections) == len(EXPECTED)
    for name, case in EXPECTED.items():
        lines = sections[f"suites/{name}"]
        assert len(lines) == 1, lines
        assert lines[0].startswith(expected_prefix(f"suites/{name}", case))
        assert str(case["error"]) in lines[0]


def test_a_huge_file_is_refused_at_its_limit_without_reading_all_of_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    line = "# " + "x" * 97 + "\n"  # 100 bytes a line
    huge.write_text("version: 1\n" + line * (MAX_SUITE_BYTES // 100 + 10), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_suite(huge, "huge.yaml")
    assert str(info.value).startswith(
        f"huge.yaml:{(MAX_SUITE_BYTES - 11) // 100 + 2}: the file is larger than {MAX_SUITE_BYTES} "
        "bytes, the limit for a suite")
    assert "split it into several suites" in str(info.value)


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path, valid_suite_text: str) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + valid_suite_text.encode("utf-8"))
    assert load_suite(path) == parse_suite(valid_suite_text)


def test_tags_never_construct_anything(tmp_path: Path, valid_suite_text: str) -> None:
    # If the tag were honoured, loading would create this file.
    marker = tmp_path / "pwned"
    text = valid_suite_text.replace(
        "name: capitals", f"name: !!python/object/apply:os.system ['touch {marker}']")
    with pytest.raises(SpecError, match="is not allowed; suites carry data only"):
        parse_suite(text, "s.yaml")
    assert not marker.exists()
