"""Per-visitor budgets for a public demo: uploads per TTL window, questions in flight and per minute,
and per hour: OCR pages and seconds, page renders, exports, feedback lines (docs/public-mode.md).

A visitor is a *client address*, not a Gradio session: a session hash is whatever the client sends
(a fresh one per request costs nothing, and `/gradio_api/call/...` makes a new session each call),
so every session from one address draws on one budget. One rule for every route (`client_key`):
without RAG_CLIENT_IP_HEADER the socket's peer address; with it, the rightmost value of that
header over all its lines (the one the owner's proxy appended; anything to its left is the
client's to forge). Addresses are normalised: `::ffff:1.2.3.4` is 1.2.3.4, and an IPv6 address
counts as its /64 (one host owns a whole /64 and can pick a fresh address per request).

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


_HOUR = 3600.0


@dataclass
class _Usage:
    uploads: deque = field(default_factory=deque)  # (time, files, bytes)
    questions: deque = field(default_factory=deque)  # times
    in_flight: int = 0
    hourly: dict = field(default_factory=dict)  # kind -> deque of (time, amount), one hour kept

    def idle(self) -> bool:
        return not self.uploads and not self.questions and not self.in_flight and not any(self.hourly.values())


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
        for spent in usage.hourly.values():
            while spent and now - spent[0][0] >= _HOUR:
                spent.popleft()
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


    # --- hourly budgets: OCR pages and seconds, page renders, exports, feedback --------------
    def used(self, key: str, kind: str) -> float:
        """What key spent of `kind` in the last hour."""
        with self._lock:
            return sum(a for _, a in self._get(key, self.clock()).hourly.get(kind, ()))

    def charge(self, key: str, kind: str, amount: float, limit: float, what: str, setting: str) -> None:
        """Charge `amount` of `kind` to key's hour, or refuse (QuotaExceeded naming `what`, the
        limit and its setting) when the hour's total would pass `limit`."""
        with self._lock:
            now = self.clock()
            usage = self._get(key, now)
            spent = usage.hourly.setdefault(kind, deque())
            total = sum(a for _, a in spent)
            if total + amount > limit:
                free_at = spent[0][0] + _HOUR - now if spent else _HOUR
                raise QuotaExceeded(
                    f"{what} refused: the limit is {limit:g} per hour from one address ({setting}); "
                    f"{total:g} used (more is free in {_wait(free_at)})"
                )
            spent.append((now, amount))
            self._forget_idle()

    def add(self, key: str, kind: str, amount: float) -> None:
        """Record spending measured afterwards (OCR seconds): never refused here; the next
        `charge` of that kind sees it."""
        with self._lock:
            now = self.clock()
            self._get(key, now).hourly.setdefault(kind, deque()).append((now, amount))


class OcrMeter:
    """One visitor's OCR budget for ingest/ocr.py's `metered`: pages and seconds per hour
    (RAG_VISITOR_OCR_PAGES_PER_HOUR, RAG_VISITOR_OCR_SECONDS_PER_HOUR). `refused` keeps the last reason."""

    def __init__(self, quotas: VisitorQuotas, key: str):
        self.quotas, self.key, self.refused = quotas, key, None

    def allow_page(self) -> str | None:
        s = self.quotas.settings
        try:
            used = self.quotas.used(self.key, "ocr_seconds")
            if used >= s.visitor_ocr_seconds_per_hour:
                raise QuotaExceeded(f"OCR refused: the limit is {s.visitor_ocr_seconds_per_hour:g} OCR seconds per "
                                    f"hour from one address (RAG_VISITOR_OCR_SECONDS_PER_HOUR); {used:.0f} used")
            self.quotas.charge(self.key, "ocr_pages", 1, s.visitor_ocr_pages_per_hour, "OCR",
                               "RAG_VISITOR_OCR_PAGES_PER_HOUR")
        except QuotaExceeded as exc:
            self.refused = str(exc)
            return self.refused
        return None

    def spent(self, seconds: float) -> None:
        self.quotas.add(self.key, "ocr_seconds", seconds)


def normalise_address(host: str | None) -> str:
    """The quota key of an address: IPv4 as is, `::ffff:a.b.c.d` as a.b.c.d, IPv6 as its /64
    network (`2001:db8:1:2::/64`); brackets, a port and an IPv6 zone are dropped. Anything that is
    not an address (a proxy header's garbage) is kept, lower-cased and bounded, so it is still one key."""
    import ipaddress

    text = (host or "").strip().strip('"').lower()
    if not text:
        return "unknown"
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0].strip()
    if not text:
        return "unknown"
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text[:64]
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def header_values(headers, name: str) -> list[str]:
    """Every value of header `name`, over all its lines, in order: from Starlette's Headers
    (getlist), ASGI's raw [(bytes, bytes)] list, or a plain mapping (one line)."""
    name = name.lower()
    if headers is None:
        return []
    if hasattr(headers, "getlist"):
        lines = headers.getlist(name)
    elif isinstance(headers, (list, tuple)):
        lines = [(v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in headers
                 if (k.decode("latin-1") if isinstance(k, bytes) else k).lower() == name]
    else:
        lines = [v for k, v in headers.items() if k.lower() == name]
    return [part.strip() for line in lines for part in str(line).split(",")]


def client_key(host: str | None, headers, header_name: str = "") -> str:
    """The address a request counts against, the same rule for every route: the socket's peer;
    or, when RAG_CLIENT_IP_HEADER names a header, the rightmost value over all of its lines (the
    one the owner's proxy appended; a client's own line or values sit to its left). Normalised
    by `normalise_address`."""
    if header_name:
        values = [v for v in header_values(headers, header_name) if v]
        if values:
            return normalise_address(values[-1])
    return normalise_address(host)
