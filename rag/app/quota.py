"""Per-visitor budgets for a public demo: uploads per TTL window, questions in flight and per minute.

A visitor is a *client address*, not a Gradio session: a session hash is whatever the client sends
(a fresh one per request costs nothing, and `/gradio_api/call/...` makes a new session each call),
so every session from one address draws on one budget. Behind a reverse proxy the address comes
from RAG_CLIENT_IP_HEADER (its last value, the one the proxy appended).

Each refusal is a `QuotaExceeded` whose message says which limit was hit and when it frees up.
Memory is bounded: keys with nothing left in their windows are dropped.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from rag.errors import RagError
from rag.settings import Settings

_MB = 1024 * 1024


class QuotaExceeded(RagError):
    """A visitor asked for more than their budget; the message says which limit and for how long."""


@dataclass
class _Usage:
    uploads: deque = field(default_factory=deque)  # (time, files, bytes)
    questions: deque = field(default_factory=deque)  # times
    in_flight: int = 0

    def idle(self) -> bool:
        return not self.uploads and not self.questions and not self.in_flight


def _wait(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    return f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"


class VisitorQuotas:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self._usage: dict[str, _Usage] = {}
        self._lock = threading.Lock()

    @property
    def window(self) -> float:
        return self.settings.session_ttl_minutes * 60

    def _get(self, key: str, now: float) -> _Usage:
        usage = self._usage.setdefault(key, _Usage())
        while usage.uploads and now - usage.uploads[0][0] >= self.window:
            usage.uploads.popleft()
        while usage.questions and now - usage.questions[0] >= 60:
            usage.questions.popleft()
        return usage

    def _forget_idle(self) -> None:
        if len(self._usage) > 1000:
            now = self.clock()
            for key in [k for k in self._usage if self._get(k, now).idle()]:
                del self._usage[key]

    # --- uploads -----------------------------------------------------------------------------
    def admit_upload(self, key: str, files: int, nbytes: int) -> None:
        """Charge an upload of `files` files, `nbytes` bytes to key, or refuse it whole."""
        s = self.settings
        with self._lock:
            now = self.clock()
            usage = self._get(key, now)
            used_files = sum(f for _, f, _ in usage.uploads)
            used_bytes = sum(b for _, _, b in usage.uploads)
            file_limit, byte_limit = s.visitor_upload_files, s.visitor_upload_mb * _MB
            if used_files + files > file_limit or used_bytes + nbytes > byte_limit:
                free_at = usage.uploads[0][0] + self.window - now if usage.uploads else self.window
                raise QuotaExceeded(
                    f"upload refused: the limit is {file_limit} files and {s.visitor_upload_mb:g} MB per "
                    f"{s.session_ttl_minutes:g} minutes from one address; {used_files} files and "
                    f"{used_bytes / _MB:.1f} MB are used (more is free in {_wait(free_at)})"
                )
            usage.uploads.append((now, files, nbytes))
            self._forget_idle()

    # --- questions ---------------------------------------------------------------------------
    @contextmanager
    def question(self, key: str) -> Iterator[None]:
        """Hold one question slot of key while the block runs, or refuse at once."""
        s = self.settings
        with self._lock:
            now = self.clock()
            usage = self._get(key, now)
            if usage.in_flight >= s.visitor_questions_in_flight:
                raise QuotaExceeded(
                    f"one question at a time, please: {usage.in_flight} of your questions "
                    f"{'is' if usage.in_flight == 1 else 'are'} still being answered "
                    f"(limit {s.visitor_questions_in_flight} per address)"
                )
            if len(usage.questions) >= s.visitor_questions_per_minute:
                raise QuotaExceeded(
                    f"too many questions: the limit is {s.visitor_questions_per_minute} per minute from one "
                    f"address (try again in {_wait(usage.questions[0] + 60 - now)})"
                )
            usage.questions.append(now)
            usage.in_flight += 1
            self._forget_idle()
        try:
            yield
        finally:
            with self._lock:
                usage.in_flight -= 1


def client_key(host: str | None, headers, header_name: str = "") -> str:
    """The address a request counts against: the socket's peer, or the last value of the trusted
    proxy header when RAG_CLIENT_IP_HEADER names one."""
    if header_name and headers is not None:
        value = headers.get(header_name) or ""
        last = value.split(",")[-1].strip()
        if last:
            return last
    return host or "unknown"
