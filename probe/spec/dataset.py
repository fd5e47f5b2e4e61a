"""Probes from a local data file (json, jsonl, csv, parquet) through Hugging Face ``datasets``.

A suite says where the file is and which column holds which probe field::

    dataset:
      path: data/capitals.csv            # relative to the suite file
      fields: {id: qid, prompt: question, paraphrases: alternatives}
      list_separator: "|"                # csv cells that hold lists

Every row becomes a ``Probe``; errors name the suite line of ``dataset`` and the
row. Only local files are read: a path that does not exist is an error, never a
hub download.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path as FsPath
from typing import Any

from probe.spec.model import DatasetSource, Probe
from probe.spec.yaml_source import Path, SourceMap

FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


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

    # Loading a small file must not draw progress bars into pytest's collection output.
    was_disabled = datasets.is_progress_bar_enabled() is False
    datasets.disable_progress_bars()
    try:
        yield datasets
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _read_rows(file: FsPath, fmt: str) -> list[dict[str, Any]]:
    with _quiet_datasets() as datasets:
        table = datasets.load_dataset(fmt, data_files=str(file), split="train")
        return list(table.to_list())


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
                        smap: SourceMap) -> tuple[Probe, ...]:
    """The probes of ``source``; ``path`` locates ``dataset`` in the suite for errors."""
    file = (base_dir / source.path).resolve()
    if not file.is_file():
        raise smap.error((*path, "path"), f"data file {source.path!r} not found (looked for "
                                          f"{file}); paths are relative to the suite file")
    fmt = _format(source, file, path, smap)
    try:
        rows = _read_rows(file, fmt)
    except Exception as err:  # datasets raises many kinds; each is a bad file for the user
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise smap.error((*path, "path"), f"cannot read {source.path!r} as {fmt}: "
                                          f"{first}") from None
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
                             f"column {column!r} not in {source.path!r}; its columns are: "
                             f"{', '.join(sorted(columns))}")
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
