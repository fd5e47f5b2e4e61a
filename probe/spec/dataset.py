"""Probes from a local data file (json, jsonl, csv, parquet) through Hugging Face ``datasets``.

A suite says where the file is and which column holds which probe field::

    dataset:
      path: data/capitals.csv            # relative to the suite file
      fields: {id: qid, prompt: question, paraphrases: alternatives}
      list_separator: "|"                # csv cells that hold lists

Every row becomes a ``Probe``; errors name the suite line of ``dataset`` and the
row. Only local files are read: a path that does not exist is an error, never a
hub download.

A suite is often someone else's file, so the data file must stay inside the suite's
directory (after symlinks) or a directory the user allows with ``--probe-data-root``
(``probe ... --data-root``); only regular files are opened (a FIFO would hang, a
device never ends), and no error quotes the data file's content (issue 14).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path as FsPath
from typing import Any

from probe.errors import UsageError
from probe.files import mode_kind
from probe.options import opt
from probe.spec.model import DatasetSource, Probe
from probe.spec.yaml_source import Path, SourceMap

FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}

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


def _locate(source: DatasetSource, base_dir: FsPath, roots: Sequence[FsPath], path: Path,
            smap: SourceMap) -> FsPath:
    """The data file's real path, once it is known to be an allowed regular file."""
    where = (*path, "path")
    home = FsPath(os.path.realpath(base_dir))
    # realpath follows every symlink, so a link inside the project that points out of it
    # is judged by where it points.
    file = FsPath(os.path.realpath(base_dir / source.path))
    allowed = (home, *roots)
    if not any(_inside(file, root) for root in allowed):
        others = (f" and the data root{'s' if len(roots) > 1 else ''} "
                  f"{', '.join(map(str, roots))}" if roots else "")
        raise smap.error(where, f"data file {source.path!r} is outside the suite's directory "
                                f"{home}{others}; a suite reads data files from there only: "
                                f"move the file under it, or allow its directory with "
                                f"{opt('data_root')} DIR")
    try:
        mode = file.stat().st_mode  # stat, never open: a FIFO must not block
    except FileNotFoundError:
        raise smap.error(where, f"data file {source.path!r} not found (looked for {file}); "
                                "paths are relative to the suite file") from None
    except OSError as err:  # a symlink loop, a directory we may not enter, ...
        raise smap.error(where, f"data file {source.path!r} cannot be read: "
                                f"{err.strerror or type(err).__name__}") from None
    kind = mode_kind(mode)
    if kind is not None:
        raise smap.error(where, f"data file {source.path!r} is {kind}, not a regular file; "
                                "give a json, jsonl, csv or parquet file")
    if "::" in str(file):
        # fsspec, under datasets, reads "a::b" as a chain of file systems.
        raise smap.error(where, f"data file {source.path!r}: the data loader cannot read a "
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


def load_dataset_probes(source: DatasetSource, base_dir: FsPath, path: Path,
                        smap: SourceMap, roots: Sequence[FsPath] = ()) -> tuple[Probe, ...]:
    """The probes of ``source``; ``path`` locates ``dataset`` in the suite for errors.

    The file must lie under ``base_dir`` (the suite's directory) or one of ``roots``
    (resolved, as ``check_data_roots`` returns them).
    """
    file = _locate(source, base_dir, roots, path, smap)
    fmt = _format(source, file, path, smap)
    try:
        rows = _read_rows(file, fmt)
    except Exception as err:  # datasets raises many kinds; each is a bad file for the user
        raise smap.error((*path, "path"), f"cannot read {source.path!r} as {fmt}: "
                                          f"{_problem(err, fmt)}") from None
    if source.limit is not None:
        rows = rows[: source.limit]
    if not rows:
        raise smap.error((*path, "path"), f"data file {source.path!r} has no rows")
    f = source.fields
    mapping: Mapping[str, str | None] = {
        "id": f.id, "prompt": f.prompt, "paraphrases": f.paraphrases, "tags": f.tags,
        "suppressed": f.suppressed, "preferred": f.preferred}
    columns = set(rows[0])
    for name, column in mapping.items():
        if column is not None and column not in columns:
            raise smap.error((*path, "fields", name),
                             f"column {column!r} not in {source.path!r}; {_columns(columns)}")
    line = smap.line_of(path, key=True) or 0
    probes = []
    for number, row in enumerate(rows, start=1):
        values = {name: row.get(column) if column else None
                  for name, column in mapping.items()}
        probe_id, prompt = _text(values["id"]).strip(), _text(values["prompt"])
        for name, value in (("id", probe_id), ("prompt", prompt)):
            if not value.strip():
                raise smap.error(path, f"{source.path!r} row {number}: empty {name} "
                                       f"(column {mapping[name]!r})")
        sep = source.list_separator
        probes.append(Probe(
            id=probe_id, prompt=prompt, paraphrases=_listing(values["paraphrases"], sep),
            tags=_listing(values["tags"], sep), suppressed=_listing(values["suppressed"], sep),
            preferred=_listing(values["preferred"], sep), line=line))
    return tuple(probes)
