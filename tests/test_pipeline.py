"""Incremental ingestion into a real Chroma with the real embedder, on real generated files."""

import shutil

import pytest

import docgen
from rag.store import DocumentStore


def statuses(report):
    return {r.path.rsplit("/", 1)[-1]: r.status for r in report.files}


def test_mixed_folder_is_ingested_with_metadata(ingestor, store, corpus):
    report = ingestor.ingest([corpus])
    assert set(statuses(report).values()) == {"added"}, report.files
    assert len(report.files) == 7
    got = store.collection.get(include=["metadatas"])
    for meta in got["metadatas"]:
        assert meta["source"].startswith(str(corpus))
        assert {"doc_id", "doc_hash", "chunk_index", "chunk_count"} <= meta.keys()
    pages = {m["page"] for m in got["metadatas"] if m["source"].endswith("report.pdf")}
    assert pages == {1, 2, 3}
    slides = {m["page"] for m in got["metadatas"] if m["source"].endswith("deck.pptx")}
    assert slides == {1, 2}
    headings = {m.get("heading") for m in got["metadatas"] if m["source"].endswith("manual.docx")}
    assert "Installation > Calibration" in headings


def test_pdf_hits_carry_one_based_pages(ingestor, store, corpus):
    ingestor.ingest([corpus])
    top = store.search("Why was the warehouse in Tromsø closed?", k=3)[0]
    assert top.source.endswith("report.pdf") and top.page == 2
    assert "flooding" in top.text


def test_reingesting_unchanged_files_embeds_nothing(ingestor, store, corpus, writes):
    ingestor.ingest([corpus])
    before = sorted(store.collection.get(include=[])["ids"])
    writes.clear()
    again = ingestor.ingest([corpus])
    assert set(statuses(again).values()) == {"unchanged"}
    assert writes == []
    assert again.totals["chunks"] == 0
    assert sorted(store.collection.get(include=[])["ids"]) == before


def test_changed_file_replaces_its_old_chunks(ingestor, store, tmp_path):
    doc = docgen.make_text(tmp_path / "policy.md", "# Policy\n\nThe office closes at 18:00 sharp.\n")
    assert ingestor.ingest([doc]).files[0].status == "added"
    docgen.make_text(doc, "# Policy\n\nThe office now closes at 20:30 on weekdays.\n")
    result = ingestor.ingest([doc]).files[0]
    assert result.status == "updated"
    texts = store.collection.get(include=["documents"])["documents"]
    assert any("20:30" in t for t in texts)
    assert not any("18:00" in t for t in texts)


def test_same_file_by_another_path_is_one_document(ingestor, store, corpus, monkeypatch):
    monkeypatch.chdir(corpus.parent)
    first = ingestor.ingest(["corpus/notes.md"]).files[0]
    second = ingestor.ingest(["./corpus/../corpus/notes.md"]).files[0]
    assert (first.status, second.status) == ("added", "unchanged")
    assert len(store.documents()) == 1


def test_deleted_document_is_never_retrieved(ingestor, store, corpus):
    ingestor.ingest([corpus])
    target = next(d for d in store.documents() if d.source.endswith("page.html"))
    assert store.delete_document(target.doc_id) == target.chunks
    hits = store.search("When does the night ferry to Bodø leave?", k=50)
    assert hits and all(not h.source.endswith("page.html") for h in hits)
    assert all(d.doc_id != target.doc_id for d in store.documents())


def test_bad_files_fail_with_reasons_and_the_rest_is_stored(ingestor, store, corpus, tmp_path, settings):
    bad = tmp_path / "bad"
    bad.mkdir()
    docgen.make_empty(bad / "empty.txt")
    docgen.make_random_bytes(bad / "random.pdf")
    docgen.make_random_bytes(bad / "random.docx")
    docgen.make_encrypted_pdf(bad / "locked.pdf", "top secret numbers")
    docgen.make_image_only_pdf(bad / "scan.pdf")
    docgen.make_truncated_pdf(bad / "cut.pdf")
    docgen.make_text(bad / "image.xyz", "whatever")
    (bad / "big.txt").write_bytes(b"a" * (settings.max_file_bytes + 1))
    report = ingestor.ingest([corpus, bad, tmp_path / "missing.pdf"])
    errors = {r.path.rsplit("/", 1)[-1]: r.error for r in report.files if r.status == "failed"}
    assert "empty file" in errors["empty.txt"]
    assert "not a valid PDF" in errors["random.pdf"]
    assert "not a valid DOCX" in errors["random.docx"]
    assert "encrypted" in errors["locked.pdf"]
    assert "no extractable text" in errors["scan.pdf"] and "scanned" in errors["scan.pdf"]
    assert "not a valid PDF" in errors["cut.pdf"]
    assert "unsupported file type '.xyz'" in errors["image.xyz"]
    assert "over the 50 MB limit" in errors["big.txt"]
    assert "no such file" in errors["missing.pdf"]
    assert not report.ok
    assert report.totals["added"] == 7 and report.totals["failed"] == 9
    assert len(store.documents()) == 7


def test_a_file_that_turns_bad_keeps_its_stored_version(ingestor, store, tmp_path):
    doc = docgen.make_pdf(tmp_path / "memo.pdf", ["The boiler is serviced in October."])
    ingestor.ingest([doc])
    doc.write_bytes(doc.read_bytes()[:300])  # the file gets corrupted on disk
    result = ingestor.ingest([doc]).files[0]
    assert result.status == "failed" and "not a valid PDF" in result.error
    assert "October" in store.search("When is the boiler serviced?", k=1)[0].text


def test_interrupted_ingest_is_completed_by_a_rerun(ingestor, store, tmp_path, monkeypatch):
    """An ingest that dies after writing part of a document leaves no duplicate after the rerun.
    (Simulated in-process here; a real kill -9 of the CLI belongs to the robustness tests.)"""
    paragraphs = "\n\n".join(f"Section {i}. " + "Tidal data and harbour notes. " * 40 for i in range(12))
    doc = docgen.make_text(tmp_path / "long.txt", paragraphs)
    real = DocumentStore.add_chunks

    def dies_halfway(self, chunks, ids, batch_size=256):
        real(self, chunks[: len(chunks) // 2], ids[: len(ids) // 2])
        raise KeyboardInterrupt  # what a Ctrl-C in the middle of embedding looks like

    monkeypatch.setattr(DocumentStore, "add_chunks", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        ingestor.ingest([doc])
    assert not store.documents()[0].complete
    monkeypatch.setattr(DocumentStore, "add_chunks", real)
    result = ingestor.ingest([doc]).files[0]
    assert result.status == "added"
    info = store.documents()[0]
    assert info.complete and info.chunks == result.chunks
    assert store.count() == result.chunks


def test_changing_chunk_size_rechunks(store, settings, corpus):
    from ingest.pipeline import Ingestor

    Ingestor(store, settings).ingest([corpus / "notes.md"])
    smaller = settings.model_copy(update={"chunk_size": 64, "chunk_overlap": 8})
    assert Ingestor(store, smaller).ingest([corpus / "notes.md"]).files[0].status == "updated"


def test_store_folder_is_not_ingested(store, settings, corpus):
    from ingest.pipeline import Ingestor

    shutil.copytree(corpus, settings.data_dir / "docs")
    report = Ingestor(store, settings).ingest([settings.data_dir])
    assert report.ok, [r for r in report.files if r.error]
    assert not any("chroma" in r.path for r in report.files)
