"""A lock file is checked, not trusted: its JSON, the type of every field, then its variants.

A lock (``probe.engine.lock``) is a file anyone can edit, and what it holds decides
a verdict: replacing variants with copies of the canonical prompt once turned a
FAIL into a PASS with no warning (issue 14). So reading one:

- parses it strictly (no duplicate keys, no file over ``MAX_LOCK_BYTES``) and
  checks the type of every field, each mistake a located error
  (``x.lock.json: probes.france.kept[3].text: ...``);
- makes every variant of a deterministic chain again from the suite, the lock's
  seed and the chain (cheap: rule-based operators, no model), and requires the lock
  to hold exactly those, in order, with the same text, prefill, chat flag, steps and
  labels: nothing added, dropped, moved or changed;
- checks what cannot be made again without its model (a model-written variant:
  ``model_paraphrase``) against what that operator always guarantees: a chain and
  seed of the suite, at most ``count`` per chain, non-blank, protected spans kept,
  and for a plain model paraphrase, one stripped line that neither gives the answer
  away nor repeats the canonical prompt (ignoring case);
- refuses a prompt that occurs twice in a probe (the canonical prompt included):
  operators never write one twice, so a duplicate proves an edit, and it never
  counts twice;
- checks the meaning-check figures: a similarity on every variant when the suite
  has a meaning check (finite, in [-1, 1]) and none without; the lost names and
  numbers, computed again; and each variant kept or rejected as those figures say.

What stays trusted is what only a model can tell: the text of a model-written
variant, whether one was left out, and the embedding similarity itself. The lock is
a committed file, so review its diffs; ``probe lock`` rewrites it from the models.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from probe.backends.base import TURN_ROLES, Prompt
from probe.engine.key_terms import key_terms, missing_terms
from probe.engine.variants import (
    CANONICAL,
    ChainOutputs,
    Step,
    Variant,
    expand,
    model_written,
    params_json,
    probe_text,
    start_prompt,
    step_core,
)
from probe.errors import SpecError
from probe.operators import OPERATORS, make_operator
from probe.operators.base import ProbeText
from probe.operators.context import leaks
from probe.operators.spans import keeps_spans
from probe.seeds import derive_seed
from probe.spec.model import OperatorSpec, Probe, Suite

# The demo suite's lock is 86 KB; a lock of thousands of variants stays far below this.
MAX_LOCK_BYTES = 64 * 1024 * 1024
SEED_LIMIT = 2 ** 64  # seeds are 63-bit sha256 prefixes (``probe.seeds``)

TOP_KEYS = ("lock_version", "suite", "digest", "seed", "probes")
OPTIONAL_TOP_KEYS = ("parts",)
SET_KEYS = ("kept", "rejected")
VARIANT_KEYS = ("index", "operator", "family", "seed", "text", "prefill", "chat", "steps",
                "core", "similarity", "missing")
STEP_KEYS = ("operator", "seed", "count", "index", "params")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class LockError(SpecError):
    """A lock file that cannot be used: unreadable, malformed, stale or edited."""


def key_text(key: str) -> str:
    """A key of the lock as an error shows it: plain when it is a plain name, else
    escaped and cut (a key is file content; control characters never reach a terminal)."""
    if _PLAIN_KEY.fullmatch(key):
        return key
    shown = ascii(key[:40])
    return shown + ("..." if len(key) > 40 else "")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


class Checker:
    """Raises located ``LockError``s for one lock file."""

    def __init__(self, shown: str, hint: str) -> None:
        self.shown = shown
        self.hint = hint

    def fail(self, path: str, message: str, *, hint: bool = True) -> LockError:
        """The error to raise: ``file: path: message; refresh it with: ...``."""
        return LockError(f"{message}; {self.hint}" if hint else message,
                         file=self.shown, path=path)

    # -- parsing ----------------------------------------------------------------------

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The lock's JSON object (duplicate keys and non-UTF-8 bytes refused)."""
        if len(raw) > MAX_LOCK_BYTES:
            raise self.fail("", f"the lock file is over {MAX_LOCK_BYTES // 2 ** 20} MiB, "
                                "far more than any lock; it is not one")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise self.fail("", f"the lock file is not UTF-8 text (bad byte at offset "
                                f"{err.start})") from None
        if not text.strip():
            raise self.fail("", "the lock file is empty")
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as err:
            # An unterminated string runs to the end of the file: cut short as well.
            cut = (not text[err.pos:].strip() or err.msg.startswith("Unterminated string"))
            what = err.msg.removesuffix(" starting at")
            raise self.fail("", f"the lock file is not valid JSON (line {err.lineno}, column "
                                f"{err.colno}: {what})"
                                f"{'; the file ends early: cut short?' if cut else ''}") from None
        except _DuplicateKey as err:
            raise self.fail("", f"the lock file has the key {key_text(err.key)} twice in one "
                                "object") from None
        except (ValueError, RecursionError) as err:
            # Nesting too deep or an integer too long for Python to read.
            reason = ("nested too deeply" if isinstance(err, RecursionError)
                      else "holds a number too long to read")
            raise self.fail("", f"the lock file is not a lock: it {reason}") from None
        if not isinstance(data, dict):
            raise self.fail("(top level)", f"expected an object, got {_kind(data)}")
        return data

    # -- field types ------------------------------------------------------------------

    def keys(self, obj: Mapping[str, Any], path: str, required: Sequence[str],
             optional: Sequence[str] = ()) -> None:
        """``obj`` has every required key and nothing else."""
        for key in obj:
            if key not in required and key not in optional:
                raise self.fail(_join(path, key_text(key)), "unknown key; a lock holds "
                                + ", ".join(required))
        for key in required:
            if key not in obj:
                raise self.fail(path or "(top level)", f"missing key {key!r}")

    def integer(self, value: object, path: str, low: int = 0, high: int = SEED_LIMIT) -> int:
        """An integer (not true/false) in ``[low, high)``."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(path, f"expected an integer, got {_kind(value)}")
        if not low <= value < high:
            raise self.fail(path, f"{value} is out of range ({low} to {high - 1})")
        return value

    def string(self, value: object, path: str) -> str:
        """A string."""
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        return value

    def obj(self, value: object, path: str) -> dict[str, Any]:
        """A JSON object."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        return value

    def array(self, value: object, path: str) -> list[Any]:
        """A JSON list."""
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def messages(self, data: object, path: str) -> tuple[tuple[str, str], ...]:
        """A conversation's earlier turns: ``{role, content}`` objects, user or assistant."""
        out = []
        for i, item in enumerate(self.array(data, path)):
            where = f"{path}[{i}]"
            d = self.obj(item, where)
            self.keys(d, where, ("role", "content"))
            role = self.string(d["role"], f"{where}.role")
            if role not in TURN_ROLES:
                raise self.fail(f"{where}.role", "expected user or assistant")
            out.append((role, self.string(d["content"], f"{where}.content")))
        return tuple(out)

    def step(self, data: object, path: str) -> Step:
        """One step of a variant's chain."""
        d = self.obj(data, path)
        self.keys(d, path, STEP_KEYS)
        count = self.integer(d["count"], f"{path}.count", 1, 10 ** 6)
        params = self.string(d["params"], f"{path}.params")
        try:
            parsed = json.loads(params)
        except (ValueError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict):
            raise self.fail(f"{path}.params", "expected an operator's parameters as a JSON "
                                              "object in a string")
        return Step(self.string(d["operator"], f"{path}.operator"),
                    self.integer(d["seed"], f"{path}.seed"), count,
                    self.integer(d["index"], f"{path}.index", 0, count), params)

    def variant(self, data: object, path: str, probe_id: str) -> Variant:
        """One variant, every field's type checked."""
        d = self.obj(data, path)
        self.keys(d, path, VARIANT_KEYS, ("system", "messages"))
        seed = d["seed"]
        if seed is not None:
            self.integer(seed, f"{path}.seed")
        chat = d["chat"]
        if not isinstance(chat, bool):
            raise self.fail(f"{path}.chat", f"expected true or false, got {_kind(chat)}")
        sim = d["similarity"]
        if sim is not None:
            if not isinstance(sim, int | float) or isinstance(sim, bool):
                raise self.fail(f"{path}.similarity", f"expected a number, got {_kind(sim)}")
            if not math.isfinite(sim) or not -1.0 <= sim <= 1.0:
                raise self.fail(f"{path}.similarity", "a similarity is a finite number from "
                                                      "-1 to 1")
        missing = tuple(self.string(t, f"{path}.missing[{i}]")
                        for i, t in enumerate(self.array(d["missing"], f"{path}.missing")))
        steps = tuple(self.step(s, f"{path}.steps[{i}]")
                      for i, s in enumerate(self.array(d["steps"], f"{path}.steps")))
        prompt = Prompt(self.string(d["text"], f"{path}.text"),
                        self.string(d["prefill"], f"{path}.prefill"), chat,
                        self.string(d.get("system", ""), f"{path}.system"),
                        self.messages(d.get("messages", []), f"{path}.messages"))
        return Variant(probe_id, self.integer(d["index"], f"{path}.index", 0, 10 ** 6),
                       self.string(d["operator"], f"{path}.operator"),
                       self.string(d["family"], f"{path}.family"), seed, prompt, steps,
                       self.string(d["core"], f"{path}.core"),
                       None if sim is None else float(sim), "lock", missing)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# -- the variants against the suite ---------------------------------------------------


def verify_probe(suite: Suite, probe: Probe, kept: Sequence[Variant],
                 rejected: Sequence[Variant], seed: int, check: Checker) -> None:
    """Raise ``LockError`` unless the lock's variants of ``probe`` are what the suite makes
    (deterministic chains) or could make (model-written ones), figures included."""
    where = f"probes.{key_text(probe.id)}"
    order = _generation_order(kept, rejected, where, suite, check)
    text = probe_text(suite, probe)
    _canonical(probe, text, order[0], where, check)
    _no_repeats(order, check)
    claimed: set[int] = set()

    def from_lock(spec: OperatorSpec, seeds: Sequence[int]) -> ChainOutputs:
        names = [spec.name, *(s.name for s in spec.then)]
        params = [params_json(spec.params), *(params_json(s.params) for s in spec.then)]
        mine = [(k, path, v) for k, (path, v) in enumerate(order) if k and v.steps
                and (v.steps[0].operator, v.steps[0].seed) == (spec.name, seeds[0])]
        if len(mine) > spec.count:
            raise check.fail(mine[spec.count][1], f"more variants of {'+'.join(names)} than "
                                                  f"its count ({spec.count}) allows")
        out: ChainOutputs = []
        for k, path, v in mine:
            _model_steps(v, names, params, seeds, spec.count, path, check)
            _model_text(v, text, names == ["model_paraphrase"], path, check)
            claimed.add(k)
            # One step: its core is known (``apply_chain``); after more steps it is not.
            core = v.core if len(names) > 1 else step_core(
                make_operator(spec.name, spec.params), probe.prompt, probe.prompt, v.prompt.text)
            out.append((v.prompt, v.steps, core))
        return out

    expected = expand(suite, probe, seed, written=from_lock)
    for k, (path, v) in enumerate(order[1:], start=1):
        # An unknown operator name is no operator of the suite either: caught below.
        names = [s.operator for s in v.steps if s.operator in OPERATORS]
        if k not in claimed and model_written(names):
            raise check.fail(f"{path}.steps", "a model-written chain that is not one of the "
                                              "suite's operators (or not with this seed)")
    _same_as_made(order, expected, where, check)
    _figures(suite, probe, order, {id(v) for v in kept}, check)


Located = tuple[str, Variant]


def _generation_order(kept: Sequence[Variant], rejected: Sequence[Variant], where: str,
                      suite: Suite, check: Checker) -> list[Located]:
    """Every variant in the order the operators made it: the meaning check renumbers the
    kept ones 0, 1, ... and leaves each rejected one at the index it was made with."""
    if not kept:
        raise check.fail(f"{where}.kept", "empty: the canonical prompt is always kept")
    for i, v in enumerate(kept):
        if v.index != i:
            raise check.fail(f"{where}.kept[{i}].index", f"expected {i}: kept variants are "
                                                         "numbered 0, 1, 2, ...")
    if rejected and suite.meaning is None:
        raise check.fail(f"{where}.rejected", "the suite has no meaning check, so no variant "
                                              "can be rejected")
    total = len(kept) + len(rejected)
    slots: list[Located | None] = [None] * total
    for j, v in enumerate(rejected):
        path = f"{where}.rejected[{j}]"
        if not 1 <= v.index < total or slots[v.index] is not None:
            raise check.fail(f"{path}.index", f"{v.index} cannot be where a rejected variant "
                                              f"was made: the probe's {total} variants are "
                                              f"numbered 0 to {total - 1}, each once (one was "
                                              "added, removed or renumbered)")
        slots[v.index] = (path, v)
    rest = iter(enumerate(kept))
    for k in range(total):
        if slots[k] is None:
            i, v = next(rest)
            slots[k] = (f"{where}.kept[{i}]", v)
    return [s for s in slots if s is not None]


def _canonical(probe: Probe, text: ProbeText, first: Located, where: str,
               check: Checker) -> None:
    path, v = first
    if path != f"{where}.kept[0]" or (v.prompt, v.steps, v.operator, v.family, v.seed,
                                      v.core, v.similarity, v.missing) != (
            start_prompt(text), (), CANONICAL, CANONICAL, None, probe.prompt, None, ()):
        raise check.fail(f"{where}.kept[0]", "the first kept variant must be the probe's "
                                             "canonical prompt, unchanged")


def _no_repeats(order: Sequence[Located], check: Checker) -> None:
    """A prompt held twice would count twice; operators never make one twice."""
    first: dict[Prompt, str] = {}
    for path, v in order:
        if v.prompt in first:
            raise check.fail(path, f"the same prompt as {first[v.prompt]}; a lock never holds "
                                   "a prompt twice (it would count twice), so it was edited")
        first[v.prompt] = path


def _model_steps(v: Variant, names: Sequence[str], params: Sequence[str],
                 seeds: Sequence[int], count: int, path: str, check: Checker) -> None:
    """A model-written variant's chain is the suite's: operators, parameters, seeds."""
    if [s.operator for s in v.steps] != list(names):
        raise check.fail(f"{path}.steps", f"the chain is not the suite's {'+'.join(names)}")
    for k, step in enumerate(v.steps):
        allowed = ({seeds[0]} if k == 0 else {derive_seed(seeds[k], i) for i in range(count)})
        shape = (step.count, step.index < count) if k == 0 else (step.count, step.index)
        if (step.seed not in allowed or step.params != params[k]
                or shape != ((count, True) if k == 0 else (1, 0))):
            raise check.fail(f"{path}.steps[{k}]", f"not a step of the suite's "
                                                   f"{'+'.join(names)} (operator, seed, count "
                                                   "or parameters differ)")


def _model_text(v: Variant, text: ProbeText, paraphrase: bool, path: str,
                check: Checker) -> None:
    """What every operator guarantees of its output, and with ``paraphrase`` (the chain is
    ``model_paraphrase`` alone) what that operator's cleaning does (``clean``, ``leaks``)."""
    words = v.prompt.text
    if not words.strip():
        raise check.fail(f"{path}.text", "blank; an operator never writes a blank variant")
    if not keeps_spans(text.prompt, words):
        raise check.fail(f"{path}.text", "lost a protected span of the prompt ({{...}} or a "
                                         "quote); the operators never drop one")
    if not paraphrase:
        return
    question = text.prompt.strip()
    if words != words.strip() or "\n" in words:
        raise check.fail(f"{path}.text", "a model paraphrase is one line without surrounding "
                                         "spaces")
    if words.lower() == question.lower():
        raise check.fail(f"{path}.text", "the canonical prompt again (ignoring case); a model "
                                         "paraphrase never repeats it")
    if leaks(words, text):
        raise check.fail(f"{path}.text", "gives the probe's answer away; a model paraphrase "
                                         "that does is never kept")


_FIELDS: tuple[tuple[str, Callable[[Variant], object]], ...] = (
    ("text", lambda v: v.prompt.text), ("prefill", lambda v: v.prompt.prefill),
    ("chat", lambda v: v.prompt.chat), ("system", lambda v: v.prompt.system),
    ("messages", lambda v: v.prompt.messages), ("steps", lambda v: v.steps),
    ("operator", lambda v: v.operator), ("family", lambda v: v.family),
    ("seed", lambda v: v.seed), ("core", lambda v: v.core))


def _same_as_made(order: Sequence[Located], expected: Sequence[Variant], where: str,
                  check: Checker) -> None:
    """The lock holds exactly the variants the suite makes now, in order."""
    for k in range(1, max(len(order), len(expected))):
        if k >= len(expected):
            raise check.fail(order[k][0], "no operator of the suite makes this variant; the "
                                          "lock was edited or written by another version of "
                                          "probe")
        made = expected[k]
        label = f"{made.operator} (seed {made.seed})"
        if k >= len(order):
            raise check.fail(where, f"the lock lacks variant {k}, made by {label}; the lock "
                                    "was edited or written by another version of probe")
        path, v = order[k]
        for name, get in _FIELDS:
            if get(v) != get(made):
                raise check.fail(f"{path}.{name}", f"differs from what {label} makes now; "
                                                   "the lock was edited or written by another "
                                                   "version of probe")


def _figures(suite: Suite, probe: Probe, order: Sequence[Located], kept: set[int],
             check: Checker) -> None:
    """Similarities present exactly with a meaning check; lost terms computed again;
    each variant kept or rejected as its figures say."""
    meaning = suite.meaning
    terms = key_terms(probe.prompt) if meaning is not None and meaning.key_terms else ()
    for path, v in order[1:]:
        if meaning is None:
            if v.similarity is not None or v.missing:
                raise check.fail(path, "has meaning-check figures, but the suite has no "
                                       "meaning check")
            continue
        if v.similarity is None:
            raise check.fail(f"{path}.similarity", "missing: the suite has a meaning check, "
                                                   "so every variant has its similarity")
        lost = missing_terms(terms, v.core or v.prompt.text)
        if v.missing != lost:
            raise check.fail(f"{path}.missing", "not the names and numbers this variant "
                                                f"lost ({', '.join(lost) or 'none'})")
        passes = v.similarity >= meaning.threshold and not lost
        if passes != (id(v) in kept):
            why = (f"similarity {v.similarity:g} is at least the threshold "
                   f"{meaning.threshold:g} and no name or number was lost" if passes else
                   f"similarity {v.similarity:g} is under the threshold {meaning.threshold:g}"
                   if v.similarity < meaning.threshold else "it lost a name or number")
            raise check.fail(path, f"{'rejected' if passes else 'kept'}, but {why}")
