"""HTTP to one OpenAI-compatible server: JSON requests with a timeout, retries with
backoff, bounded concurrency, and one-line errors.

Standard library only (``urllib`` and ``concurrent.futures``), so the engine adds no
dependency. A request that times out or gets 429 or a 5xx is retried up to
``retries`` times; the wait before retry k is ``backoff_base * 2**k`` (capped at
``BACKOFF_CAP_S``) with "equal jitter" (half fixed, half drawn from a ``random.Random``
seeded per client, so tests see the same waits every time), or what the server's
``Retry-After`` asks for when it says more. Every other failure is final at once:
a refused connection, a refused key (401/403), a request the server rejects (4xx).
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from probe.errors import BackendError
from probe.options import opt

# Seconds before the first retry; doubled for each one after it.
BACKOFF_BASE_S = 0.5
# No single wait is longer than this, whatever the backoff or Retry-After says.
BACKOFF_CAP_S = 60.0
# The most of a server's error body a message quotes (it may be a whole HTML page).
_QUOTE_CHARS = 200

T = TypeVar("T")
R = TypeVar("R")


class ServerError(BackendError):
    """The server answered ``status`` (after any retries); ``detail`` is its message."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class UnreachableError(BackendError):
    """No connection to the server (refused, unknown host)."""


@dataclass(frozen=True)
class Retrying:
    """How failed requests are retried: ``retries`` more tries after the first, waiting
    ``base * 2**k`` seconds (jittered) before retry k."""

    retries: int = 4
    base: float = BACKOFF_BASE_S
    cap: float = BACKOFF_CAP_S


def api_root(url: str) -> str:
    """The URL the endpoints hang off: ``http://host:8000/v1`` as given, and a bare
    ``http://host:8000`` with ``/v1`` added (what every OpenAI-compatible server serves)."""
    url = url.rstrip("/")
    rest = url.split("://", 1)[-1]
    return url if "/" in rest else f"{url}/v1"


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(body: bytes) -> str:
    """The server's error message from a response body, on one line and short."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        message = error.get("message") if isinstance(error, dict) else error
        text = str(message if message is not None else data.get("detail", text))
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "..."


class Client:
    """JSON over HTTP to the server at ``url``: ``get``, ``post`` and ``map`` (requests
    in flight at once, at most ``concurrency``).

    ``api_key`` goes in the ``Authorization`` header and nowhere else (never into a
    message); ``key_env`` is the environment variable it came from, for messages.
    ``sleep`` waits between retries (tests pass one that records the waits).
    """

    def __init__(self, url: str, *, api_key: str | None = None, key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0, retrying: Retrying = Retrying(),
                 concurrency: int = 8, seed: int = 0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/")
        self.root = api_root(url)
        self.timeout = timeout
        self.retrying = retrying
        self.concurrency = concurrency
        self.key_env = key_env
        self._api_key = api_key
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"Client({self.url!r})"

    def get(self, path: str) -> Any:
        """``GET root/path`` as JSON."""
        return self._request("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """``POST root/path`` with a JSON body, as JSON."""
        return self._request("POST", path, body)

    def backoff(self, attempt: int, asked: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (0 for the first): exponential with
        equal jitter, or the server's ``Retry-After`` (``asked``) when that is longer."""
        ceiling = min(self.retrying.cap, self.retrying.base * 2 ** attempt)
        with self._rng_lock:  # one generator shared by the worker threads
            wait_s: float = ceiling / 2 + self._rng.random() * ceiling / 2
        if asked is not None:
            wait_s = max(wait_s, asked)
        return min(wait_s, self.retrying.cap)

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        url = f"{self.root}/{path.lstrip('/')}"
        attempt = 0
        while True:
            try:
                return self._once(method, url, body)
            except _Retryable as err:
                if attempt >= self.retrying.retries:
                    raise self._gave_up(url, err, attempt + 1) from None
                self._sleep(self.backoff(attempt, err.retry_after))
                attempt += 1

    def _once(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._api_key:
            request.add_header("Authorization", f"Bearer {self._api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            status, detail = err.code, _detail(err.read())
            if status == 429 or status >= 500:
                raise _Retryable(f"HTTP {status}: {detail}", status, detail,
                                 retry_after(err.headers.get("Retry-After"))) from None
            raise self._refused(url, status, detail) from None
        except TimeoutError:
            raise _Retryable(f"no answer within {self.timeout:g} s", 0, "timeout") from None
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                raise _Retryable(f"no answer within {self.timeout:g} s", 0,
                                 "timeout") from None
            raise UnreachableError(
                f"cannot reach the server at {self.url} ({err.reason}); is it running? "
                f"Check {opt('server_url')}") from None
        except OSError as err:  # reset mid-answer: the server went away
            raise UnreachableError(f"lost the connection to the server at {self.url} "
                                   f"({err}); check {opt('server_url')}") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise BackendError(f"{url}: the server's answer is not JSON; is "
                               f"{opt('server_url')} an OpenAI-compatible API?") from None

    def _refused(self, url: str, status: int, detail: str) -> ServerError:
        if status in (401, 403):
            key = ("is not set" if not self._api_key else "holds a key the server refused")
            return ServerError(
                f"the server at {self.url} refused the request (HTTP {status}: {detail}); the "
                f"environment variable {self.key_env} (named by {opt('api_key_env')}) {key}",
                status, detail)
        return ServerError(f"{url}: HTTP {status}: {detail}", status, detail)

    def _gave_up(self, url: str, err: _Retryable, tries: int) -> BackendError:
        if err.status == 0:
            return BackendError(
                f"{url}: {err} ({tries} tries); raise {opt('request_timeout')} or "
                f"{opt('retries')}, or lower {opt('concurrency')}")
        return ServerError(f"{url}: {err} ({tries} tries); the server is overloaded or "
                           f"failing: raise {opt('retries')} or lower {opt('concurrency')}",
                           err.status, err.detail)

    def map(self, fn: Callable[[T], R], items: Sequence[T],
            done: Callable[[int, int], None] | None = None,
            concurrency: int | None = None) -> list[R]:
        """``fn`` over ``items`` with at most ``concurrency`` calls in flight (default: the
        client's), in order.

        ``done(finished, total)`` is told after each call ends (progress). The first
        error is raised once the calls in flight end; calls not started are dropped.
        """
        if not items:
            return []
        results: list[Any] = [None] * len(items)
        with ThreadPoolExecutor(max_workers=min(concurrency or self.concurrency, len(items)),
                                thread_name_prefix="probe-openai") as pool:
            futures: dict[Future[R], int] = {pool.submit(fn, item): i
                                              for i, item in enumerate(items)}
            pending: set[Future[R]] = set(futures)
            finished = 0
            while pending:
                ended, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in ended:
                    error = future.exception()
                    if error is not None:
                        for other in pending:
                            other.cancel()
                        raise error
                    results[futures[future]] = future.result()
                    finished += 1
                if done is not None:
                    done(finished, len(items))
        return results


class _Retryable(Exception):
    """A failure worth another try: a timeout (``status`` 0), 429 or a 5xx."""

    def __init__(self, message: str, status: int, detail: str,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
