"""Probes from a data file (json, jsonl, csv, parquet) or a hub dataset, through ``datasets``.

A suite says where the rows are and which column holds which probe field::

    dataset:
      path: data/capitals.csv            # relative to the suite file
      fields: {id: qid, prompt: question, paraphrases: alternatives, answers: answer}
      list_separator: "|"                # csv cells that hold lists

Every row becomes a ``Probe``; a row with answers gets its own pattern detector
(``answer_match`` says how they match), a row without uses the suite's. Errors name
the suite line of ``dataset`` and the row.

``hub: owner/name`` (with ``config``, ``split``, ``revision``) loads a Hugging Face hub
dataset when the hub answers, else the local copy at ``path``: a hub that cannot be
reached (offline, ``HF_HUB_OFFLINE=1``, CI) never fails a suite that has its copy, and
``probe check`` says which was used. A path that does not exist is an error, never a
download. What was loaded (where from, the hub commit, the row count and a sha256 of
the rows) is kept as the suite's ``DatasetOrigin`` and written to the run record; a
``sha256`` in the suite pins the rows themselves (a hub dataset can change under the
same id, and a branch revision does too).

A suite is often someone else's file, so the data file must stay inside the suite's
directory (after symlinks) or a directory the user allows with ``--probe-data-root``
(``probe ... --data-root``); only regular files are opened (a FIFO would hang, a
device never ends), and no error quotes the data file's content (issue 14).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path as FsPath
from typing import Any

from probe.errors import UsageError
from probe.files import mode_kind
from probe.options import opt
from probe.spec.model import DatasetOrigin, DatasetSource, DetectorSpec, Probe
from probe.spec.yaml_source import Path, SourceMap

FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}

# What a hub id looks like: ``name`` or ``owner/name`` (huggingface_hub's own rule is
# stricter; this only keeps paths out, since datasets reads a local path it is given).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")

# A column name shown in an error must look like one: a header row that is really
# someone's text (``PRETTY_NAME="Debian ..."``) is content, and is not repeated.
_PLAIN_COLUMN = re.compile(r"[\w .-]{1,64}")


def check_data_roots(values: Iterable[str | os.PathLike[str]],
                     option: str | None = None) -> tuple[FsPath, ...]:
    """The allowed data roots, resolved (symlinks too); ``UsageError`` for a root that is
    not an existing directory."""
    roots = []
    for value in values:
        root = FsPath(os.path.realpath(FsPath(value).expanduser()))
        if not root.is_dir():
            raise UsageError(f"{option or opt('data_root')}: {str(value)!r} is not a "
                             "directory; give the directory that holds the suites' data files")
        roots.append(root)
    return tuple(roots)


def _inside(file: FsPath, root: FsPath) -> bool:
    return file == root or root in file.parents


def _locate(written: str, base_dir: FsPath, roots: Sequence[FsPath], path: Path,
            smap: SourceMap, missing: str = "paths are relative to the suite file") -> FsPath:
    """The data file's real path, once it is known to be an allowed regular file
    (``written``: the path as the suite gives it; ``missing``: what to do when it is not
    there)."""
    where = (*path, "path")
    home = FsPath(os.path.realpath(base_dir))
    # realpath follows every symlink, so a link inside the project that points out of it
    # is judged by where it points.
    file = FsPath(os.path.realpath(base_dir / written))
    allowed = (home, *roots)
    if not any(_inside(file, root) for root in allowed):
        others = (f" and the data root{'s' if len(roots) > 1 else ''} "
                  f"{', '.join(map(str, roots))}" if roots else "")
        raise smap.error(where, f"data file {written!r} is outside the suite's directory "
                                f"{home}{others}; a suite reads data files from there only: "
                                f"move the file under it, or allow its directory with "
                                f"{opt('data_root')} DIR")
    try:
        mode = file.stat().st_mode  # stat, never open: a FIFO must not block
    except FileNotFoundError:
        raise smap.error(where, f"data file {written!r} not found (looked for {file}); "
                                f"{missing}") from None
    except OSError as err:  # a symlink loop, a directory we may not enter, ...
        raise smap.error(where, f"data file {written!r} cannot be read: "
                                f"{err.strerror or type(err).__name__}") from None
    kind = mode_kind(mode)
    if kind is not None:
        raise smap.error(where, f"data file {written!r} is {kind}, not a regular file; "
                                "give a json, jsonl, csv or parquet file")
    if "::" in str(file):
        # fsspec, under datasets, reads "a::b" as a chain of file systems.
        raise smap.error(where, f"data file {written!r}: the data loader cannot read a "
                                "path with '::' in it; rename the file or its directory")
    return file


def _format(source: DatasetSource, file: FsPath, path: Path, smap: SourceMap) -> str:
    if source.format != "auto":
        return source.format
    fmt = FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise smap.error((*path, "path"), f"cannot tell the format of {source.path!r} from its "
                                          f"suffix; give format: json, csv or parquet")
    return fmt


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[Any]:
    import datasets
    from datasets.utils import logging as ds_logging

    # Loading a small file must not draw progress bars into pytest's collection output,
    # and datasets logs a bad file's parser message, which quotes the file: not shown.
    was_disabled = datasets.is_progress_bar_enabled() is False
    verbosity = ds_logging.get_verbosity()
    datasets.disable_progress_bars()
    ds_logging.set_verbosity(ds_logging.CRITICAL + 10)
    try:
        yield datasets
    finally:
        ds_logging.set_verbosity(verbosity)
        if not was_disabled:
            datasets.enable_progress_bars()


def _read_rows(file: FsPath, fmt: str) -> list[dict[str, Any]]:
    # A throwaway cache: reading a suite must write nothing that outlives it (datasets
    # would keep an arrow copy of every data file under ~/.cache, for every change).
    with _quiet_datasets() as datasets, tempfile.TemporaryDirectory(prefix="probe-data-") as tmp:
        # data_files is a glob pattern: "p[1].csv" would read p1.csv instead.
        table = datasets.load_dataset(fmt, data_files=glob.escape(str(file)), split="train",
                                      cache_dir=tmp, keep_in_memory=True)
        return list(table.to_list())


def _chain(err: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _problem(err: BaseException, fmt: str) -> str:
    """What is wrong with the file, in words of our own: the parsers' messages quote the
    rows they choke on, so only numbers and type names are taken from them."""
    chain = _chain(err)
    names = {type(e).__name__ for e in chain}
    text = "\n".join(str(e) for e in chain)
    if "ImportError" in names or "ModuleNotFoundError" in names:
        return f"the {fmt} reader could not be loaded ({type(chain[-1]).__name__})"
    if "PermissionError" in names:
        return "permission denied"
    if "UnicodeDecodeError" in names or "Invalid UTF8" in text:
        return "it is not UTF-8 text; save it as UTF-8"
    if "EmptyDataError" in names:
        return "the file is empty"
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        return f"line {fields[2]} has {fields[3]} fields, but the header has {fields[1]}"
    if fmt == "json":
        top = re.search(r"Column\(\) changed from \w+ to (\w+) in row (\d+)", text)
        if top:  # the row itself, not a value in it
            return f"row {int(top[2]) + 1} is a JSON {top[1]}, not an object"
        changed = re.search(r"changed from (\w+) to (\w+) in row (\d+)", text)
        if changed:
            return (f"row {int(changed[3]) + 1}: a value changes type from {changed[1]} to "
                    f"{changed[2]}; give one JSON object per row")
        row = re.search(r"JSON parse error: .* in row (\d+)", text)
        if row:
            return f"row {int(row[1]) + 1} is not valid JSON"
        return "it is not valid JSON (or JSON lines) with one object per row"
    if fmt == "parquet":
        return "it is not a parquet file, or a damaged one"
    return f"it is not valid {fmt} ({type(chain[-1]).__name__})"


def _columns(columns: Iterable[str]) -> str:
    names = sorted(columns)
    if all(_PLAIN_COLUMN.fullmatch(n) for n in names):
        return f"its columns are: {', '.join(names)}"
    return f"it has {len(names)} columns, not all of them plain names"


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # csv ids such as 1 come back as numbers
    return "" if value is None else str(value)


def _listing(value: Any, separator: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(_text(v).strip() for v in value if _text(v).strip())
    return tuple(part.strip() for part in _text(value).split(separator) if part.strip())


class _HubUnavailable(Exception):
    """The hub could not be reached (offline, no network, a gated dataset without a
    login): the local copy is read instead, and this says why."""


def _reach_hub(hub: str, revision: str | None) -> str | None:
    """The hub commit of ``hub`` at ``revision`` (the default branch when ``None``): the
    one call that asks the hub whether the dataset is there, so the rows are loaded at a
    commit, not at whatever a branch holds by then. Raises ``_HubUnavailable`` when the
    hub cannot be reached, ``LookupError`` when it answers that there is no such dataset
    or revision."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        # A short timeout: collection must not hang on a network that drops packets.
        info = HfApi().dataset_info(hub, revision=revision, timeout=10)
    except OfflineModeIsEnabled:
        raise _HubUnavailable("offline mode is on (HF_HUB_OFFLINE)") from None
    except GatedRepoError:  # before RepositoryNotFoundError: it is one
        raise _HubUnavailable("the dataset is gated: log in with 'hf auth login' after "
                              "accepting its terms") from None
    except RevisionNotFoundError:
        raise LookupError(f"the hub has no revision {revision!r} of {hub!r}") from None
    except RepositoryNotFoundError:
        raise LookupError(f"the hub has no dataset {hub!r} (or it is private)") from None
    except Exception as err:  # httpx's and the OS's network errors, a hub that is down
        raise _HubUnavailable(f"cannot reach the hub ({type(err).__name__})") from None
    sha = getattr(info, "sha", None)
    return sha if isinstance(sha, str) else None


def _read_hub(source: DatasetSource, revision: str | None) -> list[dict[str, Any]]:
    """The rows of the hub dataset at ``revision``, through ``datasets``' own cache (a
    download the user asked for: the next run reads it from there)."""
    with _quiet_datasets() as datasets:
        table = datasets.load_dataset(source.hub, source.config, split=source.split,
                                      revision=revision)
        return list(table.to_list())


def _save_hint(source: DatasetSource) -> str:
    """The command that saves a local copy of the hub dataset, to put at ``path``."""
    target = source.path or "data/" + re.sub(r"\W+", "_", str(source.hub)).strip("_") + ".jsonl"
    revision = f", revision={source.revision!r}" if source.revision else ""
    return (f"on a machine that reaches the hub, save a copy with python -c \"import datasets; "
            f"datasets.load_dataset({source.hub!r}, {source.config!r}, "
            f"split={source.split!r}{revision}).to_json({target!r})\" and give it as "
            f"path: {target} (relative to the suite file)")


def _check_source(source: DatasetSource, path: Path, smap: SourceMap) -> None:
    if source.hub is None:
        if source.path is None:
            raise smap.error(path, "give 'path' (a local data file) or 'hub' (a Hugging Face "
                                   "dataset id, with path: its local copy)")
        for key in ("config", "revision"):
            if getattr(source, key) is not None:
                raise smap.error((*path, key), f"'{key}' is for a hub dataset: give 'hub' "
                                               "too, or remove it")
        return
    if not _HUB_ID.fullmatch(source.hub) or ".." in source.hub:
        raise smap.error((*path, "hub"), "expected a Hugging Face dataset id such as "
                                         "locuslab/TOFU; a local file goes in 'path'")
    if os.path.exists(source.hub):  # noqa: PTH110
        # datasets reads a local directory of that name instead of the hub, and would
        # read it from outside the suite's directory.
        raise smap.error((*path, "hub"), f"{source.hub!r} is also a local path here, which "
                                         "the loader would read instead of the hub; give a "
                                         "local copy with 'path'")


def _rows_hash(rows: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the rows as read: key order and file format do not matter, so a hub
    dataset and its jsonl copy hash the same when they hold the same rows."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
                      .encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _read_file(source: DatasetSource, written: str, base_dir: FsPath, roots: Sequence[FsPath],
               path: Path, smap: SourceMap, missing: str | None = None) -> list[dict[str, Any]]:
    file = _locate(written, base_dir, roots, path, smap,
                   *(() if missing is None else (missing,)))
    fmt = _format(source, file, path, smap)
    try:
        return _read_rows(file, fmt)
    except Exception as err:  # datasets raises many kinds; each is a bad file for the user
        raise smap.error((*path, "path"), f"cannot read {written!r} as {fmt}: "
                                          f"{_problem(err, fmt)}") from None


def _load_rows(source: DatasetSource, base_dir: FsPath, path: Path, smap: SourceMap,
               roots: Sequence[FsPath]) -> tuple[list[dict[str, Any]], DatasetOrigin]:
    """The rows and where they came from (the hash and count are filled in later)."""
    if source.hub is None:
        assert source.path is not None  # _check_source
        rows = _read_file(source, source.path, base_dir, roots, path, smap)
        return rows, DatasetOrigin(used="file", rows=0, sha256="", path=source.path)
    try:
        commit = _reach_hub(source.hub, source.revision)
    except LookupError as err:
        key = "revision" if source.revision and "revision" in str(err) else "hub"
        raise smap.error((*path, key), str(err)) from None
    except _HubUnavailable as err:
        reason = str(err)
    else:
        try:
            rows = _read_hub(source, commit or source.revision)
        except Exception as err:
            if any(isinstance(e, ConnectionError | TimeoutError)
                   for e in _chain(err)):  # the hub went away between the two calls
                reason = f"the download failed ({type(err).__name__})"
            else:  # a config or split that is not there: the hub's message names them
                first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
                key = ("config" if "config" in first.lower() else
                       "split" if "split" in first.lower() else "hub")
                raise smap.error((*path, key), f"cannot load {source.hub!r} from the hub: "
                                               f"{first or type(err).__name__}") from None
        else:
            return rows, DatasetOrigin(used="hub", rows=0, sha256="", hub=source.hub,
                                       commit=commit, path=source.path)
    if source.path is None:
        raise smap.error((*path, "hub"), f"hub dataset {source.hub!r} cannot be loaded "
                                         f"({reason}) and there is no local copy; "
                                         f"{_save_hint(source)}")
    rows = _read_file(source, source.path, base_dir, roots, path, smap,
                      missing=f"the hub was not used either ({reason}); {_save_hint(source)}")
    return rows, DatasetOrigin(used="file", rows=0, sha256="", hub=source.hub,
                               path=source.path, fallback_reason=reason)


def _answer_detector(source: DatasetSource, answers: tuple[str, ...], number: int, path: Path,
                     smap: SourceMap) -> DetectorSpec | None:
    """The row's own pattern detector, built and compiled now (a bad regular expression
    is the row's error at load, not a failure mid-run)."""
    if not answers:
        return None
    from probe.detectors.pattern import PatternDetector, PatternParams

    match = source.answer_match
    params = PatternParams(any=answers, regex=match.regex, word_boundary=match.word_boundary,
                           case_sensitive=match.case_sensitive)
    try:
        PatternDetector(params)
    except ValueError as err:
        # The message quotes the pattern: data file content, which errors do not repeat.
        item = re.match(r"any\[(\d+)\]", str(err))
        which = f"answer {int(item[1]) + 1}" if item else "an answer"
        raise smap.error(path, f"{source.name!r} row {number}: {which} (column "
                               f"{source.fields.answers!r}) is not a valid regular expression;"
                               " escape it, or set answer_match: {regex: false}") from None
    return DetectorSpec(type="pattern", params=params)


def load_dataset_probes(source: DatasetSource, base_dir: FsPath, path: Path,
                        smap: SourceMap, roots: Sequence[FsPath] = ()
                        ) -> tuple[tuple[Probe, ...], DatasetOrigin]:
    """The probes of ``source`` and what was loaded; ``path`` locates ``dataset`` in the
    suite for errors.

    A local file must lie under ``base_dir`` (the suite's directory) or one of ``roots``
    (resolved, as ``check_data_roots`` returns them).
    """
    _check_source(source, path, smap)
    rows, origin = _load_rows(source, base_dir, path, smap, roots)
    if source.limit is not None:
        rows = rows[: source.limit]
    if not rows:
        raise smap.error((*path, "path"), f"{source.name!r} has no rows")
    origin = dataclasses.replace(origin, rows=len(rows), sha256=_rows_hash(rows))
    if source.sha256 is not None and source.sha256.lower() != origin.sha256:
        raise smap.error((*path, "sha256"), f"the rows of {source.name!r} changed: loaded "
                                            f"{origin.describe()}, whose full sha256 is "
                                            f"{origin.sha256}; check the data, then put that "
                                            "hash in sha256")
    f = source.fields
    mapping: Mapping[str, str | None] = {
        "id": f.id, "prompt": f.prompt, "paraphrases": f.paraphrases, "tags": f.tags,
        "suppressed": f.suppressed, "preferred": f.preferred, "answers": f.answers}
    columns = set(rows[0])
    for name, column in mapping.items():
        if column is not None and column not in columns:
            raise smap.error((*path, "fields", name),
                             f"column {column!r} not in {source.name!r}; {_columns(columns)}")
    line = smap.line_of(path, key=True) or 0
    probes = []
    for number, row in enumerate(rows, start=1):
        values = {name: row.get(column) if column else None
                  for name, column in mapping.items()}
        probe_id, prompt = _text(values["id"]).strip(), _text(values["prompt"])
        for name, value in (("id", probe_id), ("prompt", prompt)):
            if not value.strip():
                raise smap.error(path, f"{source.name!r} row {number}: empty {name} "
                                       f"(column {mapping[name]!r})")
        sep = source.list_separator
        answers = _listing(values["answers"], sep)
        probes.append(Probe(
            id=probe_id, prompt=prompt, paraphrases=_listing(values["paraphrases"], sep),
            tags=_listing(values["tags"], sep), suppressed=_listing(values["suppressed"], sep),
            preferred=_listing(values["preferred"], sep),
            detector=_answer_detector(source, answers, number, path, smap), line=line))
    return tuple(probes), origin
