"""Is every stored chunk findable? The vector index checked against the stored rows, and repaired.

Chroma keeps each chunk twice: its row (text, metadata) in SQLite, and its vector in an HNSW
graph. A dense search walks the graph, so a chunk whose node no other node links to is stored,
listed, complete, and never found: the ingest's "unchanged" check reads rows, not the graph.
Measured with Chroma 1.5 (docs/robustness.md): after kill -9 and a rerun, 1-12 of ~700 chunks
were so cut off; the embedded Chroma rebuilds the graph from its log at every open, and updates
in place (the rerun re-writing the chunks of a version the kill cut short) lose links.

Here (rag.store does the Chroma calls):
- `check` compares the stored ids with what the index returns, and with `repair` re-adds the
  unreachable chunks (re-embedding their stored text: a fresh insert is linked into the graph),
  and brings the keyword index in step; `rag docs check [--repair]` prints its report;
- `after_unclean_stop`, from `open_store` when a process that wrote to the collection died
  without exiting (its marker file is left), checks and repairs before anything searches;
- `heal_written`, at the end of each ingest, checks the chunks it wrote and the whole graph's
  reachability (one query), and repairs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from rag.store import DocumentStore

_log = logging.getLogger(__name__)
ROUNDS = 3  # re-add, check again: a re-add can unlink another node (it is rare)


@dataclass
class CheckReport:
    collection: str
    stored: int  # chunks stored (rows)
    unreachable: int  # of them, not returned by the vector index when the check ran
    repaired: int = 0  # re-added
    still_unreachable: int = 0  # after the repair (or, without one, = unreachable)
    keyword_in_sync: bool = True  # the keyword index holds exactly the stored ids
    keyword_fixed: tuple[int, int] = (0, 0)  # (added, removed) by the repair
    examples: list[str] = field(default_factory=list)  # a few unreachable ids

    @property
    def ok(self) -> bool:
        return self.still_unreachable == 0 and self.keyword_in_sync

    def to_json(self) -> dict:
        return {**asdict(self), "keyword_fixed": list(self.keyword_fixed), "ok": self.ok}


def check(store: "DocumentStore", *, repair: bool = False, own_vector: Iterable[str] | None = None) -> CheckReport:
    """Every stored chunk reachable in the vector index (own_vector: whose own vector must find
    them, None = all), and the keyword index in step. With `repair`: fix both, then check again."""
    missing = store.unreachable_ids(own_vector)
    stored = store.count()
    keyword_ids = store.keyword.ids()
    stored_ids = set(store.stored_ids())
    report = CheckReport(store.name, stored, len(missing), still_unreachable=len(missing),
                         keyword_in_sync=keyword_ids == stored_ids, examples=sorted(missing)[:5])
    if not repair:
        return report
    todo = missing
    for _ in range(ROUNDS):
        if not todo:
            break
        report.repaired += store.readd(todo)
        todo = store.unreachable_ids(todo)  # the re-added ones by their own vector; all by the full query
    report.still_unreachable = len(todo)
    if not report.keyword_in_sync:
        report.keyword_fixed = store.sync_keyword_index()
        report.keyword_in_sync = store.keyword.ids() == set(store.stored_ids())
    return report


def after_unclean_stop(store: "DocumentStore", markers: list[Path]) -> CheckReport:
    """Check (and, with an embedder, repair) after a writer was killed; the markers go once the
    index is whole (without an embedder they stay, for the next open that can repair)."""
    report = check(store, repair=store.embedder is not None)
    if report.unreachable:
        _log.warning("collection %r: %d of %d chunks were unreachable in the vector index after an "
                     "unclean stop; %d re-added, %d still unreachable (rag docs check --repair)",
                     store.name, report.unreachable, report.stored, report.repaired, report.still_unreachable)
    if report.still_unreachable == 0:
        for marker in markers:
            marker.unlink(missing_ok=True)
    return report


def heal_written(store: "DocumentStore") -> CheckReport | None:
    """After an ingest: the chunks written since the last call found by their own vectors, every
    chunk reachable; repaired if not."""
    if not store.written:
        return None
    written, store.written = set(store.written), set()
    report = check(store, repair=True, own_vector=written)
    if report.unreachable:
        _log.info("collection %r: %d chunks unreachable in the vector index after writing, %d re-added",
                  store.name, report.unreachable, report.repaired)
    return report
