"""Files a command writes: checked before any work, written atomically (issue 14).

Two promises, kept here once for every command and both front ends:

- **Outputs never destroy inputs.** ``check_outputs`` refuses, as a usage error, an
  output path that is one of the run's inputs (a suite, its lock or regression file,
  a model file or directory, a dataset, a baseline or record being read), another
  output of the same run, or something that exists and is not a regular file (a
  directory, a device such as ``/dev/full``, a FIFO). Paths are compared by their
  resolved real path and by ``(st_dev, st_ino)``, so a symlink, a hard link or
  ``./x/../suite.yaml`` is caught.
- **Every write is atomic.** ``atomic_write_*`` write a fresh temporary file beside the
  target (a name no one else holds, so a planted ``x.tmp`` symlink is never followed),
  flush it to disk, and rename it over the target: a reader sees the old file or the
  new one, never half of either. The target keeps its mode. On any failure (a full
  disk, a vanished directory) the temporary file is removed, the old file is left as
  it was, and ``WriteError`` says so in one line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from probe.errors import UsageError, WriteError

PathLike = str | os.PathLike[str]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"))


def mode_kind(mode: int) -> str | None:
    """What a ``stat`` mode says a path is when it is not a regular file (``"a
    directory"``, ``"a character device"``, ...); ``None`` for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def special_kind(path: PathLike) -> str | None:
    """``mode_kind`` of ``path`` when it exists; ``None`` for a regular file or nothing at
    all. Symlinks are followed: a link to ``/dev/zero`` is a character device."""
    try:
        # Not Path(path).stat(): Path("") is ".", a directory; os.stat("") finds nothing.
        mode = os.stat(path).st_mode  # noqa: PTH116
    except (OSError, ValueError):
        return None
    return mode_kind(mode)


def refuse_special_input(path: PathLike, what: str) -> None:
    """Raise ``UsageError`` when ``path`` exists and is not a regular file: ``/dev/zero``
    or a FIFO given where a file is read is named for what it is, not reported as
    missing, and never opened (one would not end, the other would wait for a writer)."""
    kind = special_kind(path)
    if kind is not None:
        raise UsageError(f"{what} {os.fspath(path)}: {kind}, not a regular file")


# --- outputs against inputs ------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    """A path as given, with what it is called in messages and how it is identified."""

    label: str
    shown: str
    real: str
    inode: tuple[int, int] | None
    is_dir: bool


def _place(label: str, path: PathLike) -> _Place:
    # abspath collapses ".." before links are resolved; Path.absolute() would not.
    real = os.path.realpath(os.path.abspath(os.fspath(path)))  # noqa: PTH100
    try:
        info = Path(real).stat()
    except (OSError, ValueError):
        return _Place(label, os.fspath(path), real, None, False)
    return _Place(label, os.fspath(path), real, (info.st_dev, info.st_ino),
                  stat.S_ISDIR(info.st_mode))


def _same(a: _Place, b: _Place) -> bool:
    return a.real == b.real or (a.inode is not None and a.inode == b.inode)


def _inside(out: _Place, directory: _Place) -> bool:
    # An input that is not there yet (the cache of a first run) may become a directory.
    could_be_dir = directory.is_dir or directory.inode is None
    return could_be_dir and out.real.startswith(directory.real.rstrip(os.sep) + os.sep)


def check_outputs(outputs: Iterable[tuple[str, PathLike | None]],
                  inputs: Iterable[tuple[str, PathLike | None]] = ()) -> None:
    """Refuse outputs that would destroy something; raises ``UsageError`` with the fix.

    ``outputs`` are ``(option, path)`` pairs (``("--probe-json", "run.json")``; a
    ``None`` path is not written); ``inputs`` are ``(description, path)`` pairs
    (``("the suite file suites/x.yaml", "/abs/suites/x.yaml")``: the description names
    the file for messages, the path identifies it). An input that is a directory (a model
    directory, the completion cache) protects every path below it.
    """
    places = [_place(label, path) for label, path in outputs if path is not None]
    read = [_place(what, path) for what, path in inputs if path is not None]
    for i, out in enumerate(places):
        kind = special_kind(out.real)
        if kind is not None:
            raise UsageError(f"{out.label} {out.shown}: {kind}, not a regular file; give the "
                             "path of a file to write")
        for source in read:
            if _same(out, source) or _inside(out, source):
                where = "" if _same(out, source) else "inside "
                raise UsageError(f"{out.label} {out.shown}: that is {where}{source.label}, "
                                 "which this run reads; writing there would destroy it. "
                                 "Give another path")
        for other in places[:i]:
            if _same(out, other):
                raise UsageError(f"{other.label} {other.shown} and {out.label} {out.shown} "
                                 "are the same file; give each output its own path")


def model_inputs(refs: Iterable[tuple[str, str]]) -> list[tuple[str, PathLike | None]]:
    """The local files behind model references (``scripted:FILE``, a directory, a file):
    ``(option, ref)`` pairs in, ``(description, path)`` pairs out. Hub ids and built-in
    names that are not local paths read nothing here."""
    from probe.backends.engines import is_scripted, scripted_path

    out: list[tuple[str, PathLike | None]] = []
    for option, ref in refs:
        raw = scripted_path(ref)
        path = Path(raw).expanduser()
        if path.exists():
            what = ("the scripted model file" if is_scripted(ref) else
                    "the model directory" if path.is_dir() else "the model file")
            out.append((f"{what} {raw} of {option}", path))
    return out


# --- atomic writes ---------------------------------------------------------------------


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); returns ``path``."""

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked (a signal, a pipe)
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    return atomic_write_with(path, write)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """``atomic_write_bytes`` of ``text`` as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: PathLike, produce: Callable[[Path], None]) -> Path:
    """Let ``produce`` write a temporary file beside ``path``, then rename it over
    ``path``: for writers that want a path of their own (parquet). Missing parent
    directories are created. Raises ``WriteError`` (the old file untouched, the
    temporary file removed) when anything fails on the way."""
    out = Path(path)
    # Through a symlink to the file it names: the link stays a link.
    target = Path(os.path.realpath(out)) if out.is_symlink() else out
    shown = os.fspath(path)
    kind = special_kind(target)
    if kind is not None:  # never rename over a device, a FIFO or a directory
        raise WriteError(f"cannot write {shown}: {kind}, not a regular file; nothing was "
                         "written")
    previous = _existing(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(f"cannot write {shown}: {_no_directory(target.parent, err)}; "
                         "nothing was written") from None
    tmp = _fresh_temporary(target, shown, previous)
    try:
        if previous is not None:
            _keep_owner_and_mode(tmp, previous)
        produce(tmp)
        tmp.replace(target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise WriteError(f"cannot write {shown}: {_reason(err)}; "
                             f"{_left_as_it_was(previous)}") from None
        raise
    _sync_directory(target.parent)
    return out


def _no_directory(directory: Path, err: OSError) -> str:
    """Why ``directory`` cannot be made: a file in the way says more than "File exists"."""
    for part in (directory, *directory.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                return f"{part} is not a directory"
            break
    return f"cannot create the directory {directory}: {_reason(err)}"


def _existing(target: Path) -> os.stat_result | None:
    try:
        info = target.stat()
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _fresh_temporary(target: Path, shown: str, previous: os.stat_result | None) -> Path:
    """A new, empty file beside ``target`` under a name no one holds (``O_EXCL``: never
    a file or link someone left there), mode ``0o666`` less the umask like any new file."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as err:
            raise WriteError(f"cannot write {shown}: {_reason(err)}; "
                             f"{_left_as_it_was(previous)}") from None
    raise WriteError(f"cannot write {shown}: no free temporary file name beside it")


def _keep_owner_and_mode(tmp: Path, previous: os.stat_result) -> None:
    # The rename replaces the file, not its contents: carry over what ls -l shows.
    if hasattr(os, "chown") and (previous.st_uid, previous.st_gid) != (os.getuid(),
                                                                      os.getgid()):
        with contextlib.suppress(OSError):  # only root may give a file away
            os.chown(tmp, previous.st_uid, previous.st_gid)
    tmp.chmod(stat.S_IMODE(previous.st_mode))


def _sync_directory(directory: Path) -> None:
    # The rename itself must reach the disk, or a crash can bring back the old file.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def _left_as_it_was(previous: os.stat_result | None) -> str:
    return ("the previous file is unchanged" if previous is not None
            else "nothing was written")
