"""Hostile lock files: stale, truncated, damaged or tampered ``suite.lock.json`` (issue 14,
item 7). A lock is verified, not trusted (``probe.engine.lock_check``): each case writes a
valid lock with the lock writer, damages it, and ``probe check``, ``probe run`` and pytest
collection must all refuse it with the same located error (exit 2)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from tests.hostile.corpus import VALID_SUITE, Case, suite_case

KLASS = "locks"
LOCK = "suite.lock.json: "
HINT = "refresh it with: probe lock suite.yaml"

Edit = Callable[[dict[str, Any]], object]


def _write_lock(root: Path) -> Path:
    """A valid lock of the project's suite.yaml, written by the lock writer itself."""
    import probe.engine.meaning as meaning
    from probe.engine.lock import lock_path, write_lock
    from probe.spec import load_suite

    def similarities(canonical: str, texts: list[str], model: str) -> list[float]:
        # Stands in for the embedding model: 'Tell me ...' drifted, the rest did not.
        return [0.3 if t.startswith("Tell me") else 0.9 for t in texts]

    with mock.patch.object(meaning, "similarities", similarities):
        write_lock(load_suite(root / "suite.yaml", "suite.yaml"))
    return lock_path(root / "suite.yaml")


def tampered(edit: Edit) -> Callable[[Path], None]:
    """``make``: lock the suite, then apply ``edit`` to the lock's JSON."""
    def make(root: Path) -> None:
        path = _write_lock(root)
        data = json.loads(path.read_text(encoding="utf-8"))
        edit(data)
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return make


def raw(content: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """``make``: lock the suite, then replace the lock's bytes with ``content(bytes)``."""
    def make(root: Path) -> None:
        path = _write_lock(root)
        path.write_bytes(content(path.read_bytes()))
    return make


def then_suite(old: str, new: str, suite: str = VALID_SUITE) -> Callable[[Path], None]:
    """``make``: lock the suite, then edit the suite (the lock goes stale)."""
    def make(root: Path) -> None:
        _write_lock(root)
        (root / "suite.yaml").write_text(suite.replace(old, new), encoding="utf-8")
    return make


def case(id: str, says: str, make: Callable[[Path], None], *, suite: str = VALID_SUITE,
         files: dict[str, str | bytes] | None = None, note: str = "") -> Case:
    """A lock case: the suite is valid, the lock is not; every front end says ``says``."""
    return suite_case(f"locks_{id}", KLASS, suite, says, make=make, files=files, note=note)


def france(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The france probe's kept variants (canonical, paraphrase, casing)."""
    kept: list[dict[str, Any]] = d["probes"]["france"]["kept"]
    return kept


# A suite with a model-written operator (a scripted paraphraser) and a meaning check.
PARAPHRASER = textwrap.dedent("""\
    name: scripted-paraphraser
    default: "Which city is the capital of France?"
    rules:
      - match: "."
        reply: "Which city is the capital of France?"
        samples:
          - "Which city is the capital of France?"
          - "What is France's capital city?"
          - "Tell me the capital of France."
          - "The capital of France is Paris."
    """)
MODEL_SUITE = textwrap.dedent("""\
    version: 1
    name: capitals
    behavior: {description: names the capital city}
    detector: {type: pattern, any: [Paris]}
    operators:
      - {name: casing, count: 1}
      - {name: model_paraphrase, count: 3, model: "scripted:paraphraser.yaml"}
    meaning: {threshold: 0.5}
    policy: {max_resurfacing: 0.25}
    probes:
      - id: france
        prompt: What is the capital of France?
    """)
# Its france probe: kept [canonical, casing, 'Which city ...', "What is France's ..."],
# rejected ['Tell me ...'] (made third: index 2).


def model_case(id: str, says: str, edit: Edit, note: str = "") -> Case:
    """A model-written variant tampered with: checked against what the operator
    guarantees and against its meaning-check figures."""
    return case(id, says, tampered(edit), suite=MODEL_SUITE,
                files={"paraphraser.yaml": PARAPHRASER}, note=note)


def _fifo(root: Path) -> None:
    os.mkfifo(root / "suite.lock.json")


def _dir(root: Path) -> None:
    (root / "suite.lock.json").mkdir()


def _dangling(root: Path) -> None:
    (root / "suite.lock.json").symlink_to("gone.json")


def _old_lock_then_edit(root: Path) -> None:
    tampered(lambda d: d.pop("parts"))(root)
    (root / "suite.yaml").write_text(VALID_SUITE.replace("count: 1", "count: 2"),
                                     encoding="utf-8")


def _renumber(kept: list[dict[str, Any]]) -> None:
    for i, v in enumerate(kept):
        v["index"] = i


def _canonical_everywhere(d: dict[str, Any]) -> None:
    for entry in d["probes"].values():
        for v in entry["kept"][1:]:
            v["text"] = entry["kept"][0]["text"]


def _remove_casing(d: dict[str, Any]) -> None:
    france(d).pop(2)


def _add_variant(d: dict[str, Any]) -> None:
    france(d).append({**france(d)[2], "text": "WHAT IS THE CAPITAL OF FRANCE?"})
    _renumber(france(d))


def _swap(d: dict[str, Any]) -> None:
    k = france(d)
    k[1], k[2] = k[2], k[1]
    _renumber(k)


def _model(d: dict[str, Any], i: int) -> dict[str, Any]:
    v: dict[str, Any] = france(d)[i]
    assert v["operator"] == "model_paraphrase", v
    return v


def _model_repeat(d: dict[str, Any]) -> None:
    france(d).append({**_model(d, 3), "index": 4})


def _model_extra(d: dict[str, Any]) -> None:
    extra = {**_model(d, 3), "index": 4, "text": "Where does the government of France sit?",
             "core": "Where does the government of France sit?"}
    extra["steps"] = [{**extra["steps"][0], "index": 2}]
    france(d).append(extra)


CASES: list[Case] = [
    # -- the file itself -----------------------------------------------------------------
    case("empty", LOCK + "the lock file is empty; " + HINT, raw(lambda b: b"")),
    case("truncated_half", "the file ends early: cut short?",
         raw(lambda b: b[:len(b) // 2])),
    case("truncated_last_brace", "the file ends early: cut short?", raw(lambda b: b[:-2])),
    case("truncated_in_string", "(line 1, column 1: Unterminated string); the file ends early",
         raw(lambda b: b'"What is the capi')),
    case("not_utf8", LOCK + "the lock file is not UTF-8 text (bad byte at offset 0)",
         raw(lambda b: b"\xff" + b)),
    case("utf16", LOCK + "the lock file is not UTF-8 text",
         raw(lambda b: b.decode("utf-8").encode("utf-16"))),
    case("nested_deep", LOCK + "the lock file is not a lock: it nested too deeply",
         raw(lambda b: b"[" * 200_000 + b"]" * 200_000)),
    case("huge_integer", LOCK + "the lock file is not a lock: it holds a number too long",
         raw(lambda b: b.replace(b'"seed": 0', b'"seed": 1' + b"0" * 10_000, 1))),
    case("duplicate_key", LOCK + "the lock file has the key seed twice in one object",
         raw(lambda b: b.replace(b'"seed": 0', b'"seed": 0, "seed": 1', 1))),
    case("top_level_list", LOCK + "(top level): expected an object, got a list",
         raw(lambda b: b"[" + b + b"]")),
    case("directory", LOCK + "the lock path is not a regular file", _dir),
    case("fifo", LOCK + "the lock path is not a regular file", _fifo,
         note="never opened: reading a FIFO would wait for a writer"),
    case("dangling_symlink", LOCK + "the lock path is not a regular file", _dangling),
    # -- field types ---------------------------------------------------------------------
    case("future_version", LOCK + "lock_version: lock format 9 is not the one this tool "
                                  "writes (1)", tampered(lambda d: d.update(lock_version=9))),
    case("version_missing", LOCK + "lock_version: lock format None",
         tampered(lambda d: d.pop("lock_version"))),
    case("unknown_top_key", LOCK + "signature: unknown key",
         tampered(lambda d: d.update(signature="trust me"))),
    case("seed_string", LOCK + "seed: expected an integer, got a string",
         tampered(lambda d: d.update(seed="0"))),
    case("seed_negative", LOCK + "seed: -5 is out of range",
         tampered(lambda d: d.update(seed=-5))),
    case("probes_list", LOCK + "probes: expected an object, got a list",
         tampered(lambda d: d.update(probes=[]))),
    case("probe_missing", LOCK + "probes: probe japan of the suite is missing",
         tampered(lambda d: d["probes"].pop("japan"))),
    case("probe_unknown_escaped", LOCK + "probes.'x\\x1b[2J': not a probe of the suite",
         tampered(lambda d: d["probes"].update({"x\x1b[2J": d["probes"]["japan"]})),
         note="a key with a terminal escape is shown escaped"),
    case("text_integer", LOCK + "probes.france.kept[1].text: expected a string, got an "
                                "integer", tampered(lambda d: france(d)[1].update(text=42))),
    case("chat_string", LOCK + "probes.france.kept[2].chat: expected true or false",
         tampered(lambda d: france(d)[2].update(chat="true"))),
    case("index_bool", LOCK + "probes.france.kept[1].index: expected an integer, got "
                              "true/false", tampered(lambda d: france(d)[1].update(index=True))),
    case("variant_key_missing", LOCK + "probes.france.kept[1]: missing key 'steps'",
         tampered(lambda d: france(d)[1].pop("steps"))),
    case("similarity_nan", LOCK + "probes.france.kept[0].similarity: a similarity is a finite "
                                  "number", raw(lambda b: b.replace(b'"similarity": null',
                                                                    b'"similarity": NaN', 1))),
    case("similarity_infinite", LOCK + "probes.france.kept[1].similarity: a similarity is a "
                                       "finite number",
         raw(lambda b: b.replace(b'"similarity": null', b'"similarity": -Infinity', 2).replace(
             b'"similarity": -Infinity', b'"similarity": null', 1))),
    case("canonical_with_figures", LOCK + "probes.france.kept[0]: the first kept variant must "
                                          "be the probe's canonical prompt",
         tampered(lambda d: france(d)[0].update(similarity=0.5))),
    case("step_params_not_json", LOCK + "probes.france.kept[2].steps[0].params: expected an "
                                        "operator's parameters",
         tampered(lambda d: france(d)[2]["steps"][0].update(params="{"))),
    case("step_index_out_of_range", LOCK + "probes.france.kept[2].steps[0].index: 3 is out of "
                                           "range (0 to 0)",
         tampered(lambda d: france(d)[2]["steps"][0].update(index=3))),
    # -- stale: the suite changed; the message names what ------------------------------
    case("stale_detector", "the lock is stale: suite.yaml changed since it was locked (the "
                           "answers its detectors look for",
         then_suite("any: [Paris]", "any: [Lyon]"),
         note="a detector change is not reported as probes, operators or meaning check"),
    case("stale_operators", "changed since it was locked (its operators); " + HINT,
         then_suite("count: 1", "count: 2")),
    case("stale_prompt", "changed since it was locked (its probes (ids, prompts, "
                         "paraphrases or conversations)); " + HINT,
         then_suite("capital of Japan?", "capital city of Japan?")),
    case("stale_name", "changed since it was locked (its name (which seeds every operator))",
         then_suite("name: capitals", "name: capitals-v2")),
    case("stale_old_lock", "(its name, probes, detectors' answers, operators or meaning "
                           "check); " + HINT,
         _old_lock_then_edit,
         note="a lock written before per-part digests still reads; stale in general words"),
    # -- tampered variants: made again and compared ------------------------------------
    case("canonical_copies", LOCK + "probes.france.kept[1]: the same prompt as "
                                    "probes.france.kept[0]", tampered(_canonical_everywhere),
         note="issue 14's attack: it turned FAIL 0.53 into PASS"),
    case("text_edited", LOCK + "probes.france.kept[2].text: differs from what casing (seed ",
         tampered(lambda d: france(d)[2].update(text="what is the capital of FRANCE?"))),
    case("paraphrase_edited", LOCK + "probes.france.kept[1].text: differs from what "
                                     "paraphrase", tampered(
                                         lambda d: france(d)[1].update(text="Name it."))),
    case("prefill_added", LOCK + "probes.japan.kept[1].prefill: differs from what casing",
         tampered(lambda d: d["probes"]["japan"]["kept"][1].update(prefill="Tokyo is not"))),
    case("chat_flipped", LOCK + "probes.japan.kept[1].chat: differs from what casing",
         tampered(lambda d: d["probes"]["japan"]["kept"][1].update(chat=False))),
    case("seed_edited", LOCK + "probes.france.kept[2].steps: differs from what casing",
         tampered(lambda d: france(d)[2]["steps"][0].update(seed=1))),
    case("variant_removed", LOCK + "probes.france: the lock lacks variant 2, made by casing",
         tampered(_remove_casing)),
    case("variant_added", LOCK + "probes.france.kept[3]: no operator of the suite makes this "
                                 "variant", tampered(_add_variant)),
    case("variants_swapped", LOCK + "probes.france.kept[1].text: differs from what paraphrase",
         tampered(_swap)),
    case("canonical_edited", LOCK + "probes.japan.kept[0]: the first kept variant must be the "
                                    "probe's canonical prompt",
         tampered(lambda d: d["probes"]["japan"]["kept"][0].update(text="Hello"))),
    case("rejected_without_meaning", LOCK + "probes.japan.rejected: the suite has no meaning "
                                            "check, so no variant can be rejected",
         tampered(lambda d: d["probes"]["japan"].update(
             rejected=[{**d["probes"]["japan"]["kept"].pop(1), "index": 1}]))),
    case("figures_without_meaning", LOCK + "probes.japan.kept[1]: has meaning-check figures, "
                                           "but the suite has no meaning check",
         tampered(lambda d: d["probes"]["japan"]["kept"][1].update(similarity=0.99))),
    # -- model-written variants: cannot be made again; checked -----------------------------
    model_case("model_repeated", LOCK + "probes.france.kept[4]: the same prompt as "
                                        "probes.france.kept[3]", _model_repeat,
               note="a repeated variant would count twice"),
    model_case("model_canonical_case", LOCK + "probes.france.kept[3].text: the canonical "
                                              "prompt again (ignoring case)",
               lambda d: _model(d, 3).update(text="WHAT IS THE CAPITAL OF FRANCE?")),
    model_case("model_padded", LOCK + "probes.france.kept[3].text: a model paraphrase is one "
                                      "line without surrounding spaces",
               lambda d: _model(d, 3).update(text=" What is the capital of France?")),
    model_case("model_gives_answer", LOCK + "probes.france.kept[2].text: gives the probe's "
                                            "answer away",
               lambda d: _model(d, 2).update(text="Is Paris the capital of France?")),
    model_case("model_blank", LOCK + "probes.france.kept[2].text: blank",
               lambda d: _model(d, 2).update(text=" ")),
    model_case("model_similarity_missing", LOCK + "probes.france.kept[2].similarity: missing",
               lambda d: _model(d, 2).update(similarity=None)),
    model_case("model_similarity_out_of_range", LOCK + "probes.france.kept[2].similarity: a "
                                                       "similarity is a finite number from -1",
               lambda d: _model(d, 2).update(similarity=7)),
    model_case("model_kept_under_threshold", LOCK + "probes.france.kept[2]: kept, but "
                                                    "similarity 0.1 is under the threshold 0.5",
               lambda d: _model(d, 2).update(similarity=0.1)),
    model_case("model_rejected_passing", LOCK + "probes.france.rejected[0]: rejected, but "
                                                "similarity 0.9 is at least the threshold",
               lambda d: d["probes"]["france"]["rejected"][0].update(similarity=0.9)),
    model_case("model_missing_terms_forged", LOCK + "probes.france.kept[2].missing: not the "
                                                    "names and numbers this variant lost",
               lambda d: _model(d, 2).update(missing=["Paris"])),
    model_case("model_core_forged", LOCK + "probes.france.kept[2].core: differs from what "
                                           "model_paraphrase",
               lambda d: _model(d, 2).update(core="What is the capital of France?"),
               note="the core is what the meaning check compared; a plain paraphrase's is "
                    "its text"),
    model_case("model_unknown_seed", LOCK + "probes.france.kept[2].steps: a model-written "
                                            "chain that is not one of the suite's",
               lambda d: _model(d, 2)["steps"][0].update(seed=12345)),
    model_case("model_params_edited", LOCK + "probes.france.kept[2].steps[0]: not a step of "
                                             "the suite's model_paraphrase",
               lambda d: _model(d, 2)["steps"][0].update(params="{}")),
    model_case("model_extra", LOCK + "probes.france.kept[4]: more variants of "
                                     "model_paraphrase than its count (3) allows",
               _model_extra, note="a fourth paraphrase where the suite asks for three"),
]
