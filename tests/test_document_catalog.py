"""`rag docs list` from the keyword index file's catalog, without importing chromadb (issue 15:
<= 1 s), and always the same list Chroma gives: after ingest, update, delete and clear, after a
write cut short by a crash, and for an index file made before the catalog existed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from docgen import make_text
from ingest.pipeline import document_id
from rag.app.cli import main
from rag.settings import Settings
from rag.store import delete_collection, listed_documents, open_store

ROOT = Path(__file__).resolve().parent.parent


def fast(settings: Settings):
    listed = listed_documents(settings)
    assert listed is not None, "the catalog could not answer"
    return listed[1]


def test_catalog_matches_chroma_after_ingest_update_delete_and_clear(corpus, ingestor, store, settings):
    assert ingestor.ingest([corpus]).ok
    assert fast(settings) == store.documents() and len(store.documents()) == 7
    [pdf] = [d for d in fast(settings) if d.source.endswith("report.pdf")]
    assert pdf.read.pages == 3 and pdf.complete

    make_text(corpus / "notes.md", "# Notes\n\n## Birds\n\nGannets nest on the western stacks.\n\n" * 40)
    assert ingestor.ingest([corpus / "notes.md"]).files[0].status == "updated"
    assert fast(settings) == store.documents()

    store.delete_document(document_id(corpus / "report.pdf"))
    assert fast(settings) == store.documents() and len(fast(settings)) == 6

    store.clear()
    assert fast(settings) == store.documents() == []


def test_cli_list_is_the_same_text_either_way_and_imports_no_chromadb(corpus, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    assert main(["ingest", str(corpus)]) == 0
    capsys.readouterr()
    assert main(["docs", "list"]) == 0
    quick = capsys.readouterr().out
    monkeypatch.setattr("rag.store.listed_documents", lambda settings: None)  # the Chroma way
    assert main(["docs", "list"]) == 0
    assert capsys.readouterr().out == quick and "7 documents" in quick

    code = "import sys; from rag.app.cli import main; main(['docs', 'list']); print('chromadb' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"RAG_DATA_DIR": str(data), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False"
    assert proc.stdout.rsplit("\n", 2)[0] + "\n" == quick


def test_a_write_cut_short_by_a_crash_is_listed_from_chroma_then_repaired(corpus, ingestor, store, settings):
    assert ingestor.ingest([corpus]).ok
    gone = document_id(corpus / "report.pdf")
    # another process deletes a document from Chroma and dies before updating the index file
    script = textwrap.dedent(f"""
        import os
        from rag.settings import Settings
        from rag.store import keyword_index_path, make_client
        from rag.keyword import KeywordIndex
        settings = Settings(data_dir={str(settings.data_dir)!r}, collection={settings.collection!r})
        collection = make_client(settings).get_collection(settings.collection)
        index = KeywordIndex(keyword_index_path(settings, collection.id))
        with index.writing():
            collection.delete(where={{"doc_id": {gone!r}}})
            os._exit(9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 9, proc.stderr
    assert listed_documents(settings) is None  # the marker it left: the file is not trusted

    truth = open_store(settings, None, create=False)
    assert len(truth.documents()) == 6
    truth.keyword_index()  # what the slow listing does after listing: repair
    assert fast(settings) == truth.documents()


def test_an_index_file_from_before_the_catalog_is_backfilled(corpus, ingestor, store, settings, tmp_path,
                                                             monkeypatch, capsys):
    assert ingestor.ingest([corpus]).ok
    expected = store.documents()
    with store.keyword._db:
        store.keyword._db.execute("UPDATE chunk SET doc_id = NULL, doc_hash = NULL")
        store.keyword._db.execute("DELETE FROM version")
    assert listed_documents(settings) is None
    monkeypatch.setenv("RAG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RAG_COLLECTION", settings.collection)
    assert main(["docs", "list", "--json"]) == 0
    assert [d["source"] for d in json.loads(capsys.readouterr().out)] == [d.source for d in expected]
    assert fast(settings) == expected


def test_a_deleted_collection_is_not_listed_from_a_stale_file(corpus, ingestor, store, settings, monkeypatch, capsys):
    assert ingestor.ingest([corpus / "notes.md"]).ok
    assert len(fast(settings)) == 1
    delete_collection(settings, settings.collection)
    assert listed_documents(settings) is None
    monkeypatch.setenv("RAG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RAG_COLLECTION", settings.collection)
    assert main(["docs", "list"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("chroma_url", ["http://127.0.0.1:9"])
def test_a_chroma_server_is_always_asked(settings, chroma_url):
    assert listed_documents(settings.model_copy(update={"chroma_url": chroma_url})) is None
