"""What every ``probe`` subcommand shares: the exit codes and the one way to print."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

from probe.report.safe_text import visible_lines

# pytest's codes: 0 all probes pass, 1 some probe failed, 2 a suite file is invalid,
# 3 a model could not be loaded or run, 4 the command line is wrong.
EXIT_OK, EXIT_FAILED, EXIT_SPEC, EXIT_BACKEND, EXIT_USAGE = 0, 1, 2, 3, 4


def say(text: object = "", *, file: TextIO | None = None) -> None:
    """Print ``text`` safely: ids, prompts and completions can hold anything, so hidden
    characters are escaped and no line can be read as a CI workflow command.

    Standard output closed by its reader (``probe run ... | head``) is not an error of
    the command: the rest of the output goes nowhere and the command still finishes,
    so its exit status (and the report files it writes) stay what they would be."""
    stream = file if file is not None else sys.stdout
    try:
        print(visible_lines(text), file=stream)
    except BrokenPipeError:
        if stream is sys.stdout:
            silence_stdout()
        else:
            raise


def silence_stdout() -> None:
    """Send what is still to be written to standard output to the null device: its reader
    has gone, and Python would otherwise report the failed flush at exit."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        # In process (tests) stdout may be a StringIO without a descriptor: nothing to do.
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
