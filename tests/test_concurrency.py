"""Concurrency against the running app: `rag serve` in a subprocess on a loopback port, 20 chat
sessions asking through /ask while 5 other sessions upload through /upload, all at once, in
private mode (one shared collection) and in public mode (a collection per visitor).

Every session is its own gradio_client.Client (its own session hash), driven from its own thread.
Zero errors, every answer well formed, every uploaded document listed afterwards where it belongs,
and the documents ingested at start still there. Then, with the server stopped (the embedded
Chroma belongs to one process at a time), the store itself: one complete version per document,
with exactly the chunks a quiet, single-threaded ingest of the same file makes.

Answers come from the packaged SmolLM2 with short answers (RAG_MAX_ANSWER_TOKENS=24), so a burst
takes about a minute on two cores. Everything is bounded: server start, each call, the burst.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from pathlib import Path

import pytest
from langchain_core.documents import Document

from conftest import free_port, rag_cmd, running_server
from docgen import make_docx, make_pdf, make_pptx, make_text, make_xlsx
from ingest.chunking import Chunker, ChunkLimits
from ingest.formats import load_file
from ingest.pipeline import Ingestor
from rag.answer.chain import REFUSAL
from rag.settings import Settings
from rag.store import open_store
from rag.app.workspace import Workspace, visitor_collection

from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parents[1]
CHATS = 20
UPLOADS = 5
CALL_TIMEOUT = 300  # one call, queued behind the others (one local model answers one at a time)
BURST_TIMEOUT = 360  # all 25 sessions
ANSWER_KEYS = {"answer", "status", "citations", "rewritten_query", "refused"}
CITATION_KEYS = {"n", "source", "page", "chunk_id", "text", "score", "inferred", "quote", "quote_start", "quote_end"}

PRELOADED = {
    "lighthouse.md": "# Skarvøy lighthouse\n\nThe lens of the Skarvøy lighthouse is cleaned every Tuesday "
    "morning with a soft chamois cloth and distilled water.\n",
    "ferry.txt": "Timetable note. The night ferry to Bodø leaves at 23:40 from pier 4, "
    "and the morning ferry returns at 06:15.\n",
    "bakery.html": "<html><body><nav>Home</nav><main><h1>Harbour bakery</h1><p>The harbour bakery "
    "bakes its cardamom buns at 05:30 every morning and sells out by nine.</p></main></body></html>",
}
IN_CORPUS = [
    "How often is the lens of the Skarvøy lighthouse cleaned?",
    "What cloth is used to clean the lighthouse lens?",
    "When does the night ferry to Bodø leave?",
    "From which pier does the night ferry to Bodø leave?",
    "When are the cardamom buns baked at the harbour bakery?",
]
OUT_OF_CORPUS = ["Who won the football world cup final in 1998?"]
UPLOAD_NAMES = {"observatory.pdf", "greenhouse.docx", "rally.pptx", "tools.xlsx", "choir.md"}


def make_uploads(folder: Path) -> dict[str, Path]:
    """Five documents in five formats, each with a fact of its own."""
    return {
        "observatory.pdf": make_pdf(folder / "observatory.pdf", [
            "Annual report of the Kvitfjell observatory.",
            "The main telescope mirror of the Kvitfjell observatory is 2.4 metres wide.",
        ]),
        "greenhouse.docx": make_docx(folder / "greenhouse.docx", [
            ("heading", 1, "Greenhouse rules"),
            ("para", "The tomato greenhouse is watered at 07:00 and 19:00 with rainwater from tank B."),
        ]),
        "rally.pptx": make_pptx(folder / "rally.pptx", [
            ("Rally", "The snow-kite rally starts on 14 March at Lake Femund."),
            ("Safety", "Helmets are mandatory for every rider."),
        ]),
        "tools.xlsx": make_xlsx(folder / "tools.xlsx", {"Tools": [["tool", "shelf"], ["chainsaw", "C7"], ["ice auger", "D2"]]}),
        "choir.md": make_text(folder / "choir.md", "# Choir\n\nThe fishermen's choir rehearses on Thursdays "
                              "in the old net loft.\n"),
    }


@pytest.fixture(params=[False, True], ids=["private", "public"])
def served(request, tmp_path, monkeypatch):
    """`rag serve` on a free loopback port, having ingested PRELOADED at start (RAG_PRELOAD)."""
    preload = tmp_path / "preload"
    preload.mkdir()
    for name, text in PRELOADED.items():
        (preload / name).write_text(text, encoding="utf-8")
    port = free_port()
    env = {
        "RAG_DATA_DIR": str(tmp_path / "data"),
        "RAG_COLLECTION": "shared",
        "RAG_PRELOAD": str(preload),
        "RAG_PUBLIC": str(request.param).lower(),
        "RAG_LOCAL_MODEL": "smollm2",
        "RAG_MAX_ANSWER_TOKENS": "24",
        "RAG_TEMPERATURE": "0",
        # Public mode budgets questions per client address; here each simulated visitor sends its
        # own address in the proxy header, as visitors behind a reverse proxy would.
        "RAG_CLIENT_IP_HEADER": "x-forwarded-for",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the server process inherits them
    argv = [*rag_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "serve.log"
    with ExitStack() as stack:
        stack.enter_context(running_server(argv, url, log, "rag serve", timeout=180))
        yield {"url": url, "public": request.param, "root": tmp_path, "preload": preload, "stop": stack.close}
    output = log.read_text(errors="replace")
    assert "Traceback" not in output, output[-3000:]


def _client(url: str, address: str | None = None) -> Client:
    """A visitor; `address` is what the trusted proxy header says it connects from."""
    headers = {"x-forwarded-for": address} if address else None
    return Client(url, verbose=False, download_files=False, headers=headers)


def _call(client: Client, *args, api_name: str, **kwargs):
    return client.submit(*args, api_name=api_name, **kwargs).result(timeout=CALL_TIMEOUT)


def _check_answer(question: str, answer, readable: set[str]) -> None:
    assert isinstance(answer, dict) and ANSWER_KEYS <= set(answer), (question, answer)
    assert "error" not in answer, (question, answer)
    assert isinstance(answer["citations"], list), (question, answer)
    if question in OUT_OF_CORPUS:
        assert answer["refused"] is True and answer["citations"] == [] and answer["answer"] == REFUSAL, (question, answer)
        return
    assert answer["answer"] != REFUSAL, (question, answer)  # retrieval found its document
    assert answer["answer"].strip(), (question, answer)  # an answer, or the model's own "do not say"
    if answer["refused"]:
        assert answer["citations"] == [], (question, answer)
    for c in answer["citations"]:
        assert CITATION_KEYS <= set(c) and isinstance(c["n"], int) and isinstance(c["score"], float), c
        assert Path(c["source"]).name in readable, (question, c)


def _check_store(store, originals: dict[str, Path], settings: Settings) -> None:
    """Every document one complete version, chunked exactly as a quiet ingest chunks it."""
    docs = {Path(d.source).name: d for d in store.documents()}
    assert set(docs) == set(originals), (store.name, sorted(docs))
    chunker = Ingestor(store, settings).chunker
    for name, doc in docs.items():
        assert doc.complete, doc
        got = store.collection.get(where={"doc_id": doc.doc_id}, include=["documents", "metadatas"])
        stored = [text for _, text in sorted(zip((m["chunk_index"] for m in got["metadatas"]), got["documents"]))]
        assert stored == [c.page_content for c in chunker.chunk(load_file(originals[name]))], (store.name, name)


@pytest.mark.slow
def test_twenty_chats_and_five_uploads_at_once(served, embedder):
    files = make_uploads(served["root"] / "to-upload")
    assert set(files) == UPLOAD_NAMES
    questions = [(IN_CORPUS + OUT_OF_CORPUS)[i % (len(IN_CORPUS) + 1)] for i in range(CHATS)]
    start = threading.Barrier(CHATS + UPLOADS, timeout=120)  # every client connected, then all at once
    latencies: dict[str, list[float]] = {"ask": [], "upload": []}

    def chat(question: str, address: str):
        client = _client(served["url"], address)
        start.wait()
        t0 = time.perf_counter()
        answer = _call(client, question, api_name="/ask")
        latencies["ask"].append(time.perf_counter() - t0)
        return client, answer

    def upload(path: Path, address: str):
        client = _client(served["url"], address)
        start.wait()
        t0 = time.perf_counter()
        report, table, _choices, _files = _call(client, files=[handle_file(str(path))], api_name="/upload")
        latencies["upload"].append(time.perf_counter() - t0)
        return client, report, table

    with ThreadPoolExecutor(max_workers=CHATS + UPLOADS) as pool:
        chats = {pool.submit(chat, q, f"127.0.1.{i}"): q for i, q in enumerate(questions)}
        ups = {pool.submit(upload, p, f"127.0.2.{i}"): name for i, (name, p) in enumerate(files.items())}
        done, pending = wait([*chats, *ups], timeout=BURST_TIMEOUT)
        assert not pending, f"{len(pending)} of {CHATS + UPLOADS} sessions still running after {BURST_TIMEOUT} s"
        errors = [f"{chats.get(f) or ups.get(f)}: {f.exception()!r}" for f in done if f.exception()]
        assert not errors, errors
    print(f"\n{CHATS} asks: max {max(latencies['ask']):.1f} s; {UPLOADS} uploads: max {max(latencies['upload']):.1f} s")

    public = served["public"]
    sessions = set()
    for future, question in chats.items():
        client, answer = future.result()
        sessions.add(client.session_hash)
        # in public mode a chat session reads only the shared documents, never another's uploads
        _check_answer(question, answer, set(PRELOADED) if public else set(PRELOADED) | UPLOAD_NAMES)
    uploaders = {}
    for future, name in ups.items():
        client, report, table = future.result()
        sessions.add(client.session_hash)
        uploaders[name] = client
        assert name in report and "added" in report and "failed" not in report.lower(), report  # the table says FAILED
        assert name in {row[0] for row in table["data"]}, table  # listed right after its own upload
    assert len(sessions) == CHATS + UPLOADS

    # no lost document, each listed where it belongs
    listed = {Path(d["source"]).name: d for d in _call(_client(served["url"]), api_name="/documents")}
    if public:
        assert set(listed) == set(PRELOADED), listed  # a new visitor sees no one's uploads
        for name, client in uploaders.items():
            own = {Path(d["source"]).name: d["deletable"] for d in _call(client, api_name="/documents")}
            assert own == {**dict.fromkeys(PRELOADED, False), name: True}, (name, own)
    else:
        assert set(listed) == set(PRELOADED) | UPLOAD_NAMES, listed
    assert all(d["chunks"] >= 1 for d in listed.values()), listed

    # and in the store itself, read once the server is gone
    served["stop"]()
    data = served["root"] / "data"
    preloaded = {name: served["preload"] / name for name in PRELOADED}
    if public:
        placed = {"shared": preloaded} | {visitor_collection(c.session_hash): {n: files[n]} for n, c in uploaders.items()}
    else:
        placed = {"shared": preloaded | files}
    for collection, originals in placed.items():
        settings = Settings(data_dir=data, collection=collection)
        _check_store(open_store(settings, embedder, create=False), originals, settings)


@pytest.mark.slow
def test_chunking_while_questions_are_embedded_loses_no_text(embedder):
    """The chunker and the embedding model once shared one stateful fast tokenizer: while a question
    was being embedded (truncation on), an upload's long unbroken text was cut to its first 256
    tokens, the rest silently dropped. Here two threads embed questions non-stop while the third
    chunks such a text again and again; every result must equal the quiet one."""
    chunker = Chunker(embedder.tokenizer, ChunkLimits.for_embedder(256, 32, embedder.max_tokens))
    section = [Document(page_content="-".join(f"part{i}" for i in range(400)))]  # no separators
    quiet = [c.page_content for c in chunker.chunk(section)]
    assert len(quiet) > 3
    stop = threading.Event()

    def embed_questions() -> int:
        n = 0
        while not stop.is_set():
            embedder.embeddings.embed_query(f"How often is lens {n} of the lighthouse cleaned?")
            n += 1
        return n

    with ThreadPoolExecutor(max_workers=2) as pool:
        embedding = [pool.submit(embed_questions) for _ in range(2)]
        try:
            # A fixed number of chunkings, however fast this machine is; the deadline only bounds a hang.
            deadline = time.monotonic() + 600
            results = []
            while len(results) < 100:
                results.append([c.page_content for c in chunker.chunk(section)])
                if time.monotonic() > deadline:
                    pytest.fail(f"only {len(results)} chunkings in 600 s")
        finally:
            stop.set()
        assert all(f.result(timeout=60) > 0 for f in embedding)  # questions were embedded meanwhile
    wrong = [len(r) for r in results if r != quiet]
    assert not wrong, f"{len(wrong)} of {len(results)} chunkings differ (chunk counts {wrong[:5]}, quiet {len(quiet)})"


@pytest.mark.slow
def test_one_name_uploaded_five_times_at_once_keeps_one_whole_version(tmp_path, embedder):
    """Five sessions upload different files of the same name into one collection at once (the
    Workspace in-process, with the real store and embedder: the race is in Workspace.upload, not in
    HTTP). Each used to overwrite the copy another was reading and delete the others' versions as
    old, so all five reported added and the document was gone."""
    settings = Settings(data_dir=tmp_path / "data", collection="same-name")
    ws = Workspace(settings)
    versions = {}
    for i in range(5):
        text = f"# Version {i}\n\n" + " ".join(f"Version {i}, sentence {j}, about the harbour crane." for j in range(120))
        versions[i] = make_text(tmp_path / f"v{i}" / "report.md", text)
    start = threading.Barrier(len(versions), timeout=60)

    def upload(path: Path):
        start.wait()
        return ws.upload([(path, "report.md")], f"session-{path.parent.name}", None)

    with ThreadPoolExecutor(max_workers=len(versions)) as pool:
        results = [r for batch in pool.map(upload, versions.values(), timeout=BURST_TIMEOUT) for r in batch]
    assert sorted(r.status for r in results) == ["added"] + ["updated"] * 4, results

    copy = settings.data_dir / "uploads" / "same-name" / "report.md"
    assert copy.read_bytes() in {p.read_bytes() for p in versions.values()}  # one whole version, not a mix
    store = ws.store("same-name")
    _check_store(store, {"report.md": copy}, settings)
