"""Render a model's chat template within a time and size budget.

A chat template comes from the model directory (``tokenizer_config.json``,
``chat_template.jinja``), which is untrusted input. transformers renders it in
jinja2's sandbox, which keeps it from reaching Python's internals and refuses
``range`` over 100,000 items, but not from looping: two nested loops of 99,999 ran
for hours (issue 14). Rendering here stops after ``RENDER_SECONDS`` of this thread's
CPU time (a loaded machine does not make a sane template fail) and refuses a
prompt over ``MAX_RENDERED_CHARS``; every failure of the template, whatever it
raises, is one ``BackendError`` line that names the model and the template line,
and never quotes the template's own text (a file we do not control).

The deadline is checked by a trace function (``sys.settrace``) on every line the
compiled template runs and every function it calls, in this thread only and only
while rendering; the previous tracer (a debugger, coverage) is restored after and
keeps seeing every other frame. A single C-level operation (``'x' * 10**9``) cannot
be interrupted; its output is refused by the size check, and running out of memory
is a ``BackendError`` too.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from probe.errors import BackendError

if TYPE_CHECKING:
    from _typeshed import TraceFunction

# CPU seconds one prompt's rendering may take; a real template takes well under 10 ms.
RENDER_SECONDS = 1.0
# Characters a rendered prompt may have: far past any model's context length.
MAX_RENDERED_CHARS = 1_000_000

# The file name jinja2 gives the code it compiles templates into.
_TEMPLATE_FILE = "<template>"


class _OutOfTime(BaseException):
    """Raised inside the template; a BaseException, so no ``except Exception`` on the way
    out (in jinja2 or transformers) swallows it."""


def render_bounded(render: Callable[[], Any], model: str) -> str:
    """``render()`` (an ``apply_chat_template`` call) as a string, or ``BackendError``
    when it runs over ``RENDER_SECONDS``, yields over ``MAX_RENDERED_CHARS`` or fails."""
    try:
        text = _with_deadline(render, time.thread_time() + RENDER_SECONDS)
    except _OutOfTime:
        raise BackendError(
            f"{model}: the chat template ran for over {RENDER_SECONDS:g} s of CPU time on one "
            "prompt and was stopped (a loop without end?); fix the model's chat template"
        ) from None
    except MemoryError:
        raise BackendError(f"{model}: the chat template ran out of memory on one prompt; "
                           "fix the model's chat template") from None
    except Exception as err:  # untrusted code: whatever it raises is the template's fault
        raise BackendError(f"{model}: the chat template failed{_template_line(err)}: "
                           f"{type(err).__name__}; fix the model's chat template") from None
    if not isinstance(text, str):
        raise BackendError(f"{model}: the chat template gave {type(text).__name__}, not text")
    if len(text) > MAX_RENDERED_CHARS:
        raise BackendError(
            f"{model}: the chat template made a {len(text):,}-character prompt, over the "
            f"limit of {MAX_RENDERED_CHARS:,}; fix the model's chat template")
    return text


def _with_deadline(render: Callable[[], Any], deadline: float) -> Any:
    """``render()`` with a tracer that raises ``_OutOfTime`` once ``deadline`` passes."""
    previous = sys.gettrace()

    def local(frame: FrameType, event: Any, arg: Any) -> TraceFunction:
        if time.thread_time() > deadline:
            raise _OutOfTime
        return local

    def tracer(frame: FrameType, event: Any, arg: Any) -> TraceFunction | None:
        # Every call is a chance to stop (filters, macros, jinja's runtime); the
        # template's own frames are also checked line by line (its loops).
        if time.thread_time() > deadline:
            raise _OutOfTime
        if frame.f_code.co_filename == _TEMPLATE_FILE:
            return local
        return previous(frame, event, arg) if previous is not None else None

    sys.settrace(tracer)
    try:
        return render()
    finally:
        sys.settrace(previous)


def _template_line(err: BaseException) -> str:
    """`` at template line N`` from a syntax error or the template's frames, else ``""``."""
    line = getattr(err, "lineno", None)
    if not isinstance(line, int):
        tb: TracebackType | None = err.__traceback__
        lines = [f.lineno for f in traceback.extract_tb(tb)
                 if f.filename == _TEMPLATE_FILE and f.lineno]
        line = lines[-1] if lines else None
    return f" at template line {line}" if line else ""
