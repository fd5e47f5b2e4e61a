"""The README's YAML example is a valid suite, and its two commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

from probe.spec import parse_suite

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_suite_example_parses() -> None:
    block = re.search(r"## A suite\n\n```yaml\n(.*?)```", README, re.S)
    assert block is not None
    suite = parse_suite(block.group(1), "README.md")
    assert suite.probes[0].id == "france"
    assert [o.name for o in suite.operators] == ["casing", "typos", "framing", "cloze",
                                                 "prefill", "past_tense", "few_shot",
                                                 "model_paraphrase"]
    assert suite.operators[5].then[0].name == "typos"
    assert suite.meaning is not None
    assert suite.meaning.threshold == 0.5


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    # CI runs exactly the README's test command, as a line of its own.
    assert commands[1] in (REPO / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert (REPO / command.split()[1]).is_file()


def test_the_options_table_lists_every_option_once() -> None:
    """The README's table is written by hand: it must name exactly the options of the one
    table in probe/options.py, in its order."""
    from probe.options import OPTIONS

    section = README.split("## Running it", 1)[1].split("\n\n", 3)[2]
    listed = re.findall(r"^\| `--probe-([a-z-]+)", section, re.MULTILINE)
    assert listed == [o.flag for o in OPTIONS.values()]


def test_the_python_example_uses_the_real_api() -> None:
    import probe

    block = re.search(r"### From Python\n.*?```python\n(.*?)```", README, re.S)
    assert block is not None
    names = set(re.findall(r"\bprobe\.(\w+)", block.group(1)))
    assert names <= set(probe.__all__)
    assert {"run", "RunOptions"} <= names
    fields = set(re.findall(r"RunOptions\((.*?)\)", block.group(1), re.S)[0].replace(
        " ", "").replace("\n", "").split(","))
    assert {f.split("=")[0] for f in fields} <= set(probe.RunOptions.__dataclass_fields__)
