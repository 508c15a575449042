"""RAG_CHROMA_URL: the same CLI against a real `chroma run` server instead of the embedded store.

A real Chroma server (the `chroma` command chromadb installs) runs on a free loopback port for
this module; each test uses a collection of its own on it. Everything goes through `rag.app.cli.main`
in-process, as in test_cli.py, with the real embedder and the default packaged LLM (Gemma 3 270M).
"""
from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import free_port, running_server
from docgen import make_text
from rag.app.cli import main
from rag.settings import Settings
from rag.store import make_client

pytestmark = pytest.mark.slow

QUERIES = (
    "Why was the Tromsø warehouse closed?",
    "How often is the pressure sensor calibrated?",
    "When does the night ferry to Bodø leave?",
)


# ------------------------------------------------------------------ the server

def _chroma_executable() -> str:
    found = shutil.which("chroma") or shutil.which("chroma", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("the `chroma` command (installed with chromadb) is not on PATH")
    return found


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """`chroma run` on 127.0.0.1:<free port> with its data in a tmp folder; yields its URL."""
    root = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    argv = [_chroma_executable(), "run", "--path", str(root / "db"), "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with running_server(argv, url + "/api/v2/heartbeat", root / "server.log", "chroma run", timeout=60):
        yield url


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    monkeypatch.setenv("RAG_TEMPERATURE", "0")
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    return path


@pytest.fixture
def server(chroma_server, data_dir, monkeypatch) -> str:
    """RAG_CHROMA_URL set to the running server, and a fresh collection on it for this test."""
    monkeypatch.setenv("RAG_CHROMA_URL", chroma_server)
    monkeypatch.setenv("RAG_COLLECTION", f"srv-{uuid.uuid4().hex[:12]}")
    return chroma_server


# ------------------------------------------------------------------ helpers (as in test_cli.py)

def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def by_name(report: dict) -> dict[str, dict]:
    return {Path(f["path"]).name: f for f in report["files"]}


def search(capsys, query: str, k: int = 3) -> list[dict]:
    return run_json(capsys, "search", query, "--json", "--k", str(k))


def assert_no_local_chroma(data_dir: Path) -> None:
    assert not (data_dir / "chroma").exists(), "server mode wrote an embedded Chroma folder"
    if data_dir.exists():
        assert not list(data_dir.rglob("chroma.sqlite3"))


def all_chunk_ids(settings: Settings) -> list[str]:
    collection = make_client(settings).get_collection(settings.collection)
    return sorted(collection.get(include=[])["ids"])


# ------------------------------------------------------------------ the CLI against the server

def test_ingest_search_delete_through_the_server(server, corpus, data_dir, capsys):
    report = run_json(capsys, "ingest", str(corpus), "--json")
    files = by_name(report)
    assert len(files) == 7 and report["added"] == 7 and report["failed"] == 0, report
    assert all(f["status"] == "added" and f["chunks"] > 0 for f in files.values())

    again = run_json(capsys, "ingest", str(corpus), "--json")
    assert again["unchanged"] == 7 and again["chunks"] == 0
    assert {n: f["chunks"] for n, f in by_name(again).items()} == {n: f["chunks"] for n, f in files.items()}

    make_text(corpus / "notes.md", "# Notes\n\n## Birds\n\nGannets dive for mackerel off the western skerries.\n")
    updated = run_json(capsys, "ingest", str(corpus), "--json")
    assert by_name(updated)["notes.md"]["status"] == "updated"
    assert updated["updated"] == 1 and updated["unchanged"] == 6
    assert not [h for h in search(capsys, "Where do puffins nest?", k=20) if "Puffins" in h["text"]]
    assert "Gannets" in search(capsys, "What do gannets dive for?", k=1)[0]["text"]

    [top] = search(capsys, "Why was the Tromsø warehouse closed?", k=1)
    assert top["source"] == str(corpus / "report.pdf") and top["page"] == 2 and "flooding" in top["text"]

    docs = run_json(capsys, "docs", "list", "--json")
    assert len(docs) == 7 and all(d["complete"] for d in docs)
    code, out, err = run(capsys, "docs", "delete", str(corpus / "report.pdf"))
    assert code == 0, err
    assert str(corpus / "report.pdf") not in {d["source"] for d in run_json(capsys, "docs", "list", "--json")}
    for query in ("Why was the Tromsø warehouse closed?", "Who was the auditor?", "quarterly revenue"):
        hits = search(capsys, query, k=20)
        assert hits and str(corpus / "report.pdf") not in {h["source"] for h in hits}

    assert_no_local_chroma(data_dir)


def test_ask_through_the_server_cites_and_refuses(server, corpus, data_dir, capsys):
    assert run_json(capsys, "ingest", str(corpus), "--json")["added"] == 7

    answer = run_json(capsys, "ask", "Why was the warehouse in Tromsø closed?", "--json")
    assert not answer["refused"] and answer["answer"].strip()
    assert any(c["source"].endswith("report.pdf") and c["page"] == 2 for c in answer["citations"]), answer

    refused = run_json(capsys, "ask", "Who won the football World Cup final in 1998?", "--json")
    assert refused["refused"] is True and refused["citations"] == []

    assert_no_local_chroma(data_dir)


def test_same_chunks_and_rankings_as_the_embedded_store(chroma_server, corpus, tmp_path, monkeypatch, capsys):
    results = {}
    for mode in ("embedded", "server"):
        data = tmp_path / f"data-{mode}"
        monkeypatch.setenv("RAG_DATA_DIR", str(data))
        monkeypatch.setenv("RAG_COLLECTION", f"same-{uuid.uuid4().hex[:12]}")
        if mode == "server":
            monkeypatch.setenv("RAG_CHROMA_URL", chroma_server)
        report = run_json(capsys, "ingest", str(corpus), "--json")
        assert report["added"] == 7, report
        settings = Settings()
        results[mode] = {
            "ids": all_chunk_ids(settings),
            "files": {n: f["chunks"] for n, f in by_name(report).items()},
            "hits": {q: search(capsys, q, k=3) for q in QUERIES},
        }
    embedded, served = results["embedded"], results["server"]
    assert served["ids"] == embedded["ids"] and len(embedded["ids"]) >= 7
    assert served["files"] == embedded["files"]
    for query in QUERIES:
        a, b = embedded["hits"][query], served["hits"][query]
        assert [h["chunk_id"] for h in a] == [h["chunk_id"] for h in b], query
        assert [(h["source"], h["page"], h["text"]) for h in a] == [(h["source"], h["page"], h["text"]) for h in b]
        assert [h["score"] for h in a] == pytest.approx([h["score"] for h in b], abs=1e-3)
    assert (tmp_path / "data-embedded" / "chroma").is_dir()
    assert_no_local_chroma(tmp_path / "data-server")


def test_keyword_index_follows_another_client_writing_to_the_server(server, corpus, tmp_path, monkeypatch, capsys):
    """Two processes with their own data folders (their own keyword index files) share one Chroma
    server. One ingests, updates and deletes; the other's keyword search follows by id difference,
    never returns a deleted chunk, and reads only the chunks it lacks."""
    from ingest.pipeline import Ingestor, document_id
    from rag.embeddings import make_embedder
    from rag.retrieval import Retriever
    from rag.store import open_store

    writer_settings = Settings(data_dir=tmp_path / "writer")
    reader_settings = Settings(data_dir=tmp_path / "reader")
    embedder = make_embedder(writer_settings)
    writer = open_store(writer_settings, embedder)
    reader = open_store(reader_settings, embedder)
    assert writer.keyword.path != reader.keyword.path
    retriever = Retriever(reader, reader_settings)
    assert Ingestor(writer, writer_settings).ingest([corpus]).ok

    hit = retriever.retrieve("Lindqvist", k=1)[0]  # counts differ: synced by id difference
    assert "Karin Lindqvist" in hit.text and hit.metadata["bm25_rank"] == 1
    assert reader.keyword.ids() == set(all_chunk_ids(reader_settings))

    note = tmp_path / "note.txt"
    make_text(note, "Signal flag code ZQ-5150 is kept in the chart room.")
    assert Ingestor(writer, writer_settings).ingest([note]).ok
    reads = []
    original = reader._indexed_texts
    monkeypatch.setattr(reader, "_indexed_texts", lambda ids: reads.append(list(ids)) or original(ids))
    hit = retriever.retrieve("ZQ-5150", k=1)[0]
    assert "ZQ-5150" in hit.text and hit.metadata["bm25_rank"] == 1
    assert reads == [[hit.chunk_id]]  # only the new chunk's text was read

    assert writer.delete_document(document_id(note)) == 1
    assert all("ZQ-5150" not in h.text for h in retriever.retrieve("ZQ-5150 chart room", k=5))
    assert reader.keyword.search("ZQ-5150", 5) == []


# ------------------------------------------------------------------ a wrong RAG_CHROMA_URL

def assert_one_line_naming_the_url(code: int, out: str, err: str, url: str) -> None:
    assert code == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith("error: ") and f"RAG_CHROMA_URL={url}" in err, err


@pytest.mark.parametrize("command", [["search", "ferry", "--json"], ["docs", "list"], ["ask", "Where is the ferry?"]])
def test_closed_port_is_one_line_naming_rag_chroma_url(corpus, data_dir, monkeypatch, capsys, command):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAG_CHROMA_URL", url)
    for argv in (["ingest", str(corpus), "--json"], command):
        assert_one_line_naming_the_url(*run(capsys, *argv), url)
    assert_no_local_chroma(data_dir)


class _Handler(http.server.BaseHTTPRequestHandler):
    upstream = ""  # a real Chroma server to forward the client's handshake to; empty: 404 everything

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.upstream:
            self.send_error(404, "File not found")  # an ordinary web server's HTML error page
            return
        if "/collections" in self.path:
            self.close_connection = True  # the Chroma behind it went away: no response at all
            return
        try:
            with urllib.request.urlopen(self.upstream + self.path, timeout=10) as resp:
                status, body, kind = resp.status, resp.read(), resp.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            status, body, kind = exc.code, exc.read(), exc.headers.get("content-type", "")
        self.send_response(status)
        self.send_header("content-type", kind or "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@pytest.fixture
def fake_server():
    servers = []

    def start(upstream: str = "") -> str:
        handler = type("Handler", (_Handler,), {"upstream": upstream})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_a_web_server_that_is_not_chroma_is_one_line(corpus, data_dir, monkeypatch, capsys, fake_server):
    url = fake_server()
    monkeypatch.setenv("RAG_CHROMA_URL", url)
    code, out, err = run(capsys, "ingest", str(corpus), "--json")
    assert_one_line_naming_the_url(code, out, err, url)
    assert "<" not in err  # the HTML error page is reduced to its text


def test_a_server_failing_after_the_handshake_is_one_line(chroma_server, corpus, data_dir, monkeypatch, capsys, fake_server):
    """chromadb.HttpClient checks the server when it is made; the first real call can still fail."""
    url = fake_server(upstream=chroma_server)
    monkeypatch.setenv("RAG_CHROMA_URL", url)
    for argv in (["ingest", str(corpus), "--json"], ["search", "ferry"], ["docs", "list"]):
        assert_one_line_naming_the_url(*run(capsys, *argv), url)
    assert_no_local_chroma(data_dir)


def test_a_url_that_is_not_http_is_refused(corpus, data_dir, monkeypatch, capsys):
    monkeypatch.setenv("RAG_CHROMA_URL", "127.0.0.1:8000")
    code, out, err = run(capsys, "ingest", str(corpus), "--json")
    assert code == 2 and out == "" and "RAG_CHROMA_URL='127.0.0.1:8000'" in err and "http" in err
    assert err.count("\n") == 1 and "Traceback" not in err
