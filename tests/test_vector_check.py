"""Every stored chunk reachable by dense search: the check and repair of rag.integrity (fast tier).

Real Chroma in tmp_path and real files. Chroma's own loss (after kill -9, and when it rebuilds
its graph from its log) is not reproducible on demand, so `LostVectors` is a real DocumentStore
whose vector index "loses" chosen chunks: its nearest-neighbour answers leave them out until they
are written again, as Chroma's did. kill -9 for real is tests/test_crash_safety.py.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import docgen
from ingest.pipeline import Ingestor
from rag import integrity
from rag.store import DocumentStore, SYNC_THRESHOLD, _writer_marker, keyword_index_path, open_store


class LostVectors(DocumentStore):
    """A store whose vector index has lost the nodes in `lost` (stored rows, no path to them)."""

    lost: set[str] = set()

    def _nearest(self, vectors, n):
        ids, dist = super()._nearest(vectors, self.count())
        pairs = [[(i, d) for i, d in zip(row, drow) if i not in self.lost][:n] for row, drow in zip(ids, dist)]
        return [[i for i, _ in p] for p in pairs], [[d for _, d in p] for p in pairs]

    def readd(self, ids):
        done = super().readd(ids)
        self.lost -= set(ids)
        return done


@pytest.fixture
def lossy(settings, embedder, tmp_path):
    store = open_store(settings, embedder)
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(6):
        docgen.make_text(folder / f"n{i}.txt", f"Note {i}\n\n" + " ".join(
            f"Harbour log {i} entry {j}: the {w} was checked at dawn." for j, w in
            enumerate("lantern ferry granite beacon anchor kelp pier gull".split() * 6)))
    Ingestor(store, settings).ingest([folder])
    store.__class__ = LostVectors
    store.lost = set()
    return store


def test_a_healthy_store_checks_clean(lossy):
    report = integrity.check(lossy)
    assert report.stored == lossy.count() > 20
    assert (report.unreachable, report.still_unreachable, report.keyword_in_sync, report.ok) == (0, 0, True, True)


def test_lost_chunks_are_found_and_re_added_then_searchable(lossy):
    ids = sorted(lossy.stored_ids())
    lost = set(ids[3:8])
    lossy.lost = set(lost)
    text_before = {c.id: c.text for c in lossy.get_by_ids(sorted(lost))}
    assert lossy.unreachable_ids() == lost  # exactly those, by the whole-collection query
    report = integrity.check(lossy)
    assert (report.stored, report.unreachable, report.still_unreachable, report.ok) == (len(ids), 5, 5, False)
    assert report.examples == sorted(lost)
    assert lossy.lost == lost  # a check alone changes nothing

    fixed = integrity.check(lossy, repair=True)
    assert (fixed.unreachable, fixed.repaired, fixed.still_unreachable, fixed.ok) == (5, 5, 0, True)
    assert not lossy.lost and lossy.unreachable_ids() == set()
    # the same chunks, text and metadata, each once; and each found by its own text again
    assert sorted(lossy.stored_ids()) == ids
    after = {c.id: c for c in lossy.get_by_ids(sorted(lost))}
    assert {i: c.text for i, c in after.items()} == text_before
    for cid, chunk in after.items():
        assert cid in [h.chunk_id for h in lossy.search(chunk.text, k=3)]


def test_a_chunk_its_own_vector_does_not_find_is_unreachable_too(lossy):
    """Reachable in the whole-collection walk but not among its own 10 nearest: dense search
    would not find it either. Only the ids asked about are checked that way."""
    target = sorted(lossy.stored_ids())[0]

    class Buried(LostVectors):
        def _nearest(self, vectors, n):
            ids, dist = DocumentStore._nearest(self, vectors, self.count())
            if n < self.count():  # a top-n search: the target is never in it
                ids = [[i for i in row if i != target][:n] for row in ids]
                dist = [d[:n] for d in dist]
            return ids, dist

    lossy.__class__ = Buried
    assert lossy.unreachable_ids() == {target}
    assert lossy.unreachable_ids(own_vector=[]) == set()
    assert lossy.unreachable_ids(own_vector=[target]) == {target}


def test_keyword_index_out_of_step_is_reported_and_resynced(lossy):
    some = sorted(lossy.stored_ids())[:2]
    lossy.keyword.remove(some)
    report = integrity.check(lossy)
    assert not report.keyword_in_sync and not report.ok
    fixed = integrity.check(lossy, repair=True)
    assert fixed.keyword_in_sync and fixed.keyword_fixed == (2, 0) and fixed.ok


def test_ingest_ends_by_re_adding_what_its_writes_left_unreachable(lossy, settings, tmp_path):
    """heal_written runs at the end of every ingest: a chunk the index lost while this run wrote
    is re-added before `rag ingest` returns."""
    docgen.make_text(tmp_path / "notes" / "late.txt", "Late note\n\nThe tide gauge at the pier reads 3.2 metres.")
    victim = sorted(lossy.stored_ids())[0]
    real_write = DocumentStore._write

    def write_and_lose(self, ids, vectors, documents, metadatas):
        real_write(self, ids, vectors, documents, metadatas)
        self.lost.add(victim)

    lossy._write = write_and_lose.__get__(lossy)
    report = Ingestor(lossy, settings).ingest([tmp_path / "notes"])
    assert report.totals["added"] == 1
    assert not lossy.lost and lossy.unreachable_ids() == set()


def test_collections_are_created_to_persist_their_index_at_every_write(store):
    assert store.collection.configuration["hnsw"]["sync_threshold"] == SYNC_THRESHOLD


def test_open_after_a_killed_writer_checks_and_clears_its_marker(settings, embedder, tmp_path, caplog):
    store = open_store(settings, embedder)
    docgen.make_text(tmp_path / "a.txt", "Lamp room\n\nThe lamp room key hangs behind the chart table.")
    Ingestor(store, settings).ingest([tmp_path / "a.txt"])
    index = keyword_index_path(settings, store.collection.id)
    assert _writer_marker(index, os.getpid()).exists()  # this process wrote: its marker, until exit
    dead = subprocess.Popen(["true"])
    dead.wait()
    _writer_marker(index, dead.pid).touch()  # a writer that is gone without exiting cleanly
    live = _writer_marker(index, os.getppid())  # a live process: may be writing, left alone
    live.touch()
    calls = []
    real = integrity.after_unclean_stop
    try:
        integrity.after_unclean_stop = lambda s, markers: calls.append(markers) or real(s, markers)
        open_store(settings, embedder)
    finally:
        integrity.after_unclean_stop = real
    assert calls == [[_writer_marker(index, dead.pid)]]
    assert not _writer_marker(index, dead.pid).exists() and live.exists()


def test_rag_docs_check_reports_per_collection_and_repairs(tmp_path, monkeypatch, capsys):
    """The CLI in-process (the fast tier's embedder is what `--repair` loads)."""
    from rag.app.cli import main
    from rag.settings import load_settings

    data = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    docgen.make_text(tmp_path / "a.txt", "Lamp room\n\nThe lamp room key hangs behind the chart table.")
    for name in ("first", "second"):
        assert main(["ingest", str(tmp_path / "a.txt"), "--collection", name]) == 0
    capsys.readouterr()

    def run(*args):
        code = main(["docs", "check", *args])
        return code, capsys.readouterr().out

    code, out = run("--json")
    assert code == 0, out
    assert [(r["collection"], r["stored"], r["unreachable"], r["keyword_in_sync"], r["ok"]) for r in json.loads(out)] == [
        ("first", 1, 0, True, True), ("second", 1, 0, True, True)]
    assert run("--collection", "second") == (
        0, "second: 1 chunks stored, 0 unreachable in the vector index, keyword index in sync: yes\n")
    # the keyword index of "first" emptied by hand: reported, exit 1; --repair mends it
    store = open_store(load_settings(collection="first"), None, create=False)
    store.keyword.remove(store.stored_ids())
    code, out = run("--collection", "first")
    assert code == 1 and "keyword index in sync: no" in out and "fix: rag docs check --repair" in out
    code, out = run("--collection", "first", "--repair")
    assert code == 0 and "keyword index 1 added, 0 removed" in out, out
    assert run("--collection", "first")[0] == 0
