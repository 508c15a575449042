"""The ingest pipeline (ingest/batching.py): batches across files, in order, every file once.

Real Chroma in tmp_path and real files; the fast tier's word-hash embedder (the real tokenizer,
so chunk counts are real). kill -9 in the middle of a pipelined `rag ingest` is in
tests/test_crash_safety.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

import docgen
from ingest import batching
from ingest.pipeline import Ingestor, document_id
from rag.store import DocumentStore

WORDS = "tide lantern harbour granite ferry beacon storm gull rope anchor cliff moss kelp pier".split()


def note(i: int, sentences: int = 3) -> str:
    body = " ".join(f"{WORDS[(i + s) % len(WORDS)].capitalize()} note {i} sentence {s} about the pier." for s in range(sentences))
    return f"Note {i}\n\n{body}\n"


def make_folder(tmp_path, n: int = 60, big_at: int = 20):
    folder = tmp_path / "notes"
    folder.mkdir()
    paths = []
    for i in range(n):
        text = note(i, sentences=900 if i == big_at else 3)  # the big one: ~40 chunks
        paths.append(docgen.make_text(folder / f"n{i:03d}.txt", text))
    return folder, paths


def test_small_files_share_batches_and_every_file_is_stored_once_in_order(ingestor, store, tmp_path, writes, monkeypatch):
    monkeypatch.setattr(batching, "BATCH_CHUNKS", 16)  # so a file of ~40 chunks is "big"
    folder, paths = make_folder(tmp_path)
    seen = []
    report = ingestor.ingest([folder], on_result=seen.append)

    assert [r.path for r in report.files] == [str(p) for p in paths]  # the order given
    assert seen == report.files  # each reported once, as it became final
    assert {r.status for r in report.files} == {"added"}
    assert len(writes) < len(paths) / 4, f"{len(writes)} writes for {len(paths)} files: no batching across files"
    assert all(len(ids) <= batching.BATCH_CHUNKS for ids in writes)

    by_doc = {document_id(p): p for p in paths}
    stored = store.collection.get(include=["metadatas"])
    assert len(stored["ids"]) == len(set(stored["ids"])) == sum(r.chunks for r in report.files)
    per_doc = Counter(m["doc_id"] for m in stored["metadatas"])
    assert set(per_doc) == set(by_doc)
    assert all(per_doc[d] == m["chunk_count"] for d, m in ((m["doc_id"], m) for m in stored["metadatas"]))
    assert all(d.complete for d in store.documents())

    # a file that fits in a batch is never split across writes; only the big one is
    writes_per_doc = Counter(doc for ids in writes for doc in {i.split("-")[0] for i in ids})
    big = document_id(paths[20])
    assert per_doc[big] > batching.BATCH_CHUNKS and writes_per_doc[big] >= 2
    assert {d: n for d, n in writes_per_doc.items() if d != big} == {d: 1 for d in by_doc if d != big}


def test_results_are_reported_while_later_files_are_still_being_read(ingestor, tmp_path, monkeypatch):
    monkeypatch.setattr(batching, "BATCH_CHUNKS", 16)
    folder, paths = make_folder(tmp_path, n=40, big_at=5)
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real = Ingestor.prepare

    def prepare(self, path, source):
        with lock:
            events.append(("read", path.name))
        return real(self, path, source)

    monkeypatch.setattr(Ingestor, "prepare", prepare)
    ingestor.ingest([folder], on_result=lambda r: events.append(("done", r.path.rsplit("/", 1)[-1])))
    first_done = events.index(("done", "n000.txt"))
    last_read = events.index(("read", "n039.txt"))
    assert first_done < last_read, "nothing was reported until every file had been read"


def test_the_reader_is_at_most_read_ahead_files_ahead_of_the_writer(ingestor, tmp_path, monkeypatch):
    """README: "the reader is at most 8 files ahead". The writer is held on its first file until
    the reader stops reading (it waits to hand over the next file): exactly READ_AHEAD files have
    been read beyond the one the writer holds, not one more."""
    folder, paths = make_folder(tmp_path, n=30, big_at=-1)
    reads: list[str] = []
    taken: list[str] = []
    real_prepare, real_take = Ingestor.prepare, batching._Writer.take
    seen: dict[str, int] = {}
    release = threading.Event()

    def prepare(self, path, source):
        reads.append(path.name)
        return real_prepare(self, path, source)

    def take(self, job):
        taken.append(job.path.name)
        if len(taken) == 1:
            assert release.wait(60), "the reader never stopped"
        return real_take(self, job)

    def watch():  # once nothing more is read for a second, note how far ahead the reader got
        last, since = -1, time.monotonic()
        while time.monotonic() - since < 1.0:
            time.sleep(0.05)
            if len(reads) != last:
                last, since = len(reads), time.monotonic()
        seen["ahead"] = len(reads) - len(taken)
        release.set()

    monkeypatch.setattr(Ingestor, "prepare", prepare)
    monkeypatch.setattr(batching._Writer, "take", take)
    threading.Thread(target=watch, daemon=True).start()
    report = ingestor.ingest([folder])
    assert batching.READ_AHEAD == 8
    assert seen["ahead"] == batching.READ_AHEAD, seen
    assert len(report.files) == len(paths) and {r.status for r in report.files} == {"added"}


def test_a_file_whose_write_fails_fails_alone_and_is_named(ingestor, store, tmp_path, monkeypatch):
    folder, paths = make_folder(tmp_path, n=12, big_at=-1)
    docgen.make_text(paths[4], note(4) + "\nPOISON chunk that the store refuses.\n")
    real = DocumentStore.add_chunks

    def refuses_poison(self, chunks, ids, batch_size=256):
        if any("POISON" in c.page_content for c in chunks):
            raise ValueError("the store refused a chunk")
        return real(self, chunks, ids, batch_size)

    monkeypatch.setattr(DocumentStore, "add_chunks", refuses_poison)
    report = ingestor.ingest([folder])
    failed = [r for r in report.files if r.status == "failed"]
    assert [r.path for r in failed] == [str(paths[4])]
    assert "ValueError: the store refused a chunk" in failed[0].error
    assert report.totals["added"] == 11
    assert {d.source for d in store.documents()} == {str(p) for i, p in enumerate(paths) if i != 4}


def test_bad_and_unchanged_files_keep_their_place_among_batched_ones(ingestor, tmp_path):
    folder, paths = make_folder(tmp_path, n=10, big_at=-1)
    ingestor.ingest([paths[2], paths[7]])
    docgen.make_empty(folder / "n004b.txt")
    report = ingestor.ingest([folder])
    names = [r.path.rsplit("/", 1)[-1] for r in report.files]
    assert names == sorted(names)
    status = {n: r.status for n, r in zip(names, report.files)}
    assert status["n002.txt"] == status["n007.txt"] == "unchanged"
    assert status["n004b.txt"] == "failed" and "empty file" in report.files[names.index("n004b.txt")].error
    assert sum(s == "added" for s in status.values()) == 8


def test_one_document_given_twice_in_a_run_is_stored_once(ingestor, store, tmp_path, monkeypatch):
    folder, paths = make_folder(tmp_path, n=3, big_at=-1)
    monkeypatch.chdir(tmp_path)
    report = ingestor.ingest(["notes/n001.txt", "notes/n000.txt", "./notes/../notes/n001.txt"])
    assert [r.status for r in report.files] == ["added", "added", "unchanged"]
    assert len(store.documents()) == 2
    assert store.count() == report.files[0].chunks + report.files[1].chunks


def test_where_the_time_goes_is_recorded(ingestor, store, tmp_path):
    folder, _ = make_folder(tmp_path, n=5, big_at=-1)
    ingestor.ingest([folder])
    stages = {**ingestor.timings.seconds, **store.timings}
    assert {"check", "parse", "chunk", "embed", "write"} <= set(stages)
    assert all(seconds >= 0 for seconds in stages.values())


def test_each_write_is_reported_before_the_next_one_starts(ingestor, tmp_path, monkeypatch):
    """Files finished by a write are reported before the next write (`rag ingest` prints them, and
    tests/test_crash_safety.py kills the process by what it printed)."""
    monkeypatch.setattr(batching, "BATCH_CHUNKS", 16)
    folder, paths = make_folder(tmp_path, n=8, big_at=4)
    events: list[str] = []
    real = DocumentStore.add_chunks

    def spy(self, chunks, ids, batch_size=256):
        events.append("write " + ",".join(sorted({c.metadata["file_name"] for c in chunks})))
        return real(self, chunks, ids, batch_size)

    monkeypatch.setattr(DocumentStore, "add_chunks", spy)
    ingestor.ingest([folder], on_result=lambda r: events.append("done " + r.path.rsplit("/", 1)[-1]))
    first_big_write = events.index("write n004.txt")
    assert events[:first_big_write] == ["write n000.txt,n001.txt,n002.txt,n003.txt",
                                         "done n000.txt", "done n001.txt", "done n002.txt", "done n003.txt"]
