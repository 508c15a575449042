"""What reading one file found: pages, pages read by OCR, pages with no text.

Loaders keep their one-argument signature (`loader(path) -> sections`), so the few that know
about pages report them here, on the side: the caller wraps `load_file` in `collecting()` and
reads the counts afterwards. A loader called outside `collecting()` reports to nobody.
A context variable, not a global, so concurrent ingests in other threads keep their own counts.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class LoadStats:
    pages: int | None = None  # pages, slides or image frames; None for formats without pages
    ocr_pages: int = 0  # pages whose text was read by OCR
    empty_pages: int = 0  # pages that gave no text at all (text layer and OCR both empty, or not OCR'd)
    text_pages: int = 0  # pages whose text came from the file's own text layer
    warnings: list[str] = field(default_factory=list)

    @property
    def ocr_only(self) -> bool:
        """Every word of the file came from OCR (so it may hold recognition errors)."""
        return self.ocr_pages > 0 and self.text_pages == 0


_current: ContextVar[LoadStats | None] = ContextVar("ingest_load_stats", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[LoadStats]:
    """Collect what the loaders report while the block runs."""
    stats = LoadStats()
    token = _current.set(stats)
    try:
        yield stats
    finally:
        _current.reset(token)


def report(*, pages: int | None = None, ocr_pages: int = 0, empty_pages: int = 0, text_pages: int = 0,
           warning: str | None = None) -> None:
    """Called by a loader: add these counts to the file being collected, if any."""
    stats = _current.get()
    if stats is None:
        return
    if pages is not None:
        stats.pages = (stats.pages or 0) + pages
    stats.ocr_pages += ocr_pages
    stats.empty_pages += empty_pages
    stats.text_pages += text_pages
    if warning:
        stats.warnings.append(warning)


class StageTimer:
    """Seconds spent per stage of ingestion (check, parse, chunk, embed, write, ...), summed.

    `with timer("parse"): ...` adds the block's time; threads may add at once. What the
    benchmarks print as "where the time goes"; stages that run in parallel threads can sum to
    more than the wall time."""

    def __init__(self) -> None:
        import threading

        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        import time

        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - started)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
