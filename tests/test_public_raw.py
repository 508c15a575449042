"""Issue 11, proved against a real running `rag serve --public` (a subprocess on a free port),
spoken to over the raw Gradio queue protocol (tests/raw_gradio.py), as a hostile client would.

Visitors are told apart by their address: each test's clients connect from their own loopback
address (127.0.0.x), which is what the server's per-address budgets see.
Real parts: the packaged embedder, SmolLM2 as the local model, Chroma on disk, a plain HTTP
listener standing in for the owner's OpenAI-compatible server (it records requests, answers 500).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

import docgen
from conftest import free_port, running_server
from raw_gradio import RawClient, chat_text, file_data, unescape

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "lighthouse-handbook.md"
ANSWERABLE = "How often is the lens turned?"  # in the preloaded handbook: reaches the model
UNANSWERABLE = "Who won the football World Cup final in 1998?"  # refused before any model call
OWNER_KEY = "sk-owner-secret-key"


# ------------------------------------------------------------------ a listener for the owner's OpenAI server

class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list

    def log_message(self, *args):
        pass

    def _record(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body.decode(errors="replace")})
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"message": "recorder"}}')

    do_GET = do_POST = _record


@contextmanager
def listener():
    handler = type("Recorder", (_Recorder,), {"seen": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.seen
    finally:
        httpd.shutdown()
        httpd.server_close()


# ------------------------------------------------------------------ the server

SERVE = "import sys\nfrom rag.app.cli import main\nsys.exit(main(sys.argv[1:]))"


@contextmanager
def rag_serve(root: Path, public: bool = True, **env):
    """`rag serve` in a subprocess with RAG_* settings from env; yields (url, process)."""
    data = root / "data"
    preload = root / "preload"
    preload.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE, preload / SAMPLE.name)
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "GRADIO_"))}
    environ.update({
        "PYTHONPATH": str(ROOT), "RAG_DATA_DIR": str(data), "RAG_PRELOAD": str(preload),
        "RAG_LOCAL_MODEL": "smollm2", "RAG_TEMPERATURE": "0", "RAG_MAX_ANSWER_TOKENS": "48",
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
        **{k: str(v) for k, v in env.items()},
    })
    argv = [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if public:
        argv.append("--public")
    url = f"http://127.0.0.1:{port}"
    with running_server(argv, url + "/config", root / "serve.log", "rag serve", timeout=300, env=environ) as proc:
        yield url, proc


@pytest.fixture(scope="module")
def recorder():
    with listener() as (url, seen):
        yield url, seen


@pytest.fixture(scope="module")
def public(tmp_path_factory, recorder):
    """A public server whose owner allows the openai backend (their model only) and sets small quotas."""
    root = tmp_path_factory.mktemp("public")
    with rag_serve(root, OPENAI_BASE_URL=recorder[0] + "/v1", OPENAI_API_KEY=OWNER_KEY, RAG_OPENAI_MODEL="owner-model",
                   RAG_PUBLIC_BACKENDS="openai", RAG_VISITOR_UPLOAD_FILES=3, RAG_VISITOR_UPLOAD_MB=1,
                   RAG_VISITOR_QUESTIONS_IN_FLIGHT=1, RAG_VISITOR_QUESTIONS_PER_MINUTE=4) as (url, proc):
        yield url, proc, root / "data"


def client(url: str, n: int) -> RawClient:
    return RawClient(url, local_address=f"127.0.0.{n}")


def respond_fn(c: RawClient) -> int:
    """The answering event itself. The page runs a gate first (question submit -> gate, then on
    success -> respond); a hostile client skips the gate and joins the answering event directly."""
    gate, _ = c.event(c.component_id(elem_id="question"), "submit")
    return next(dep.get("id", i) for i, dep in enumerate(c.config["dependencies"]) if dep.get("trigger_after") == gate)


def respond_data(question: str, backend="local", model="", k=4) -> list:
    # question, chat, history, turns, collection, k, hybrid, backend, model, temperature
    return [question, [], None, None, None, k, True, backend, model, 0.0]


def respond(c: RawClient, question: str, backend="local", model="", session=None, k=4):
    data = respond_data(question, backend, model, k)
    return c.call(respond_fn(c), data, session_hash=session, trigger_id=c.component_id(elem_id="question"))


def upload(c: RawClient, *paths: Path, session=None):
    """The page's upload event, with files first POSTed to /gradio_api/upload (as the browser does)."""
    cached = c.upload(*paths)
    fn, _ = c.named("upload")
    result = c.call(fn, [[file_data(p, Path(n).name) for p, n in zip(cached, paths)], None], session_hash=session)
    return result, cached


def maps_of(proc) -> str:
    return Path(f"/proc/{proc.pid}/maps").read_text()


def rss_mb(proc) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------ 1. settings a visitor may not change

def test_model_path_is_ignored_and_no_gguf_on_disk_is_loaded(public, tmp_path):
    url, proc, _ = public
    from rag.llm import resolve_local_model

    stray = tmp_path / "stray.gguf"
    shutil.copy(resolve_local_model("smollm2"), stray)
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("plain text")
    before = rss_mb(proc)
    answers = []
    paths = ("/etc/shadow", "/proc/self/environ", "/nonexistent/x.gguf", str(tmp_path), str(not_gguf), str(stray))
    for n, path in enumerate(paths, 60):  # each from its own address: the per-minute quota is not the point
        result = respond(client(url, n), UNANSWERABLE, "local", path, session=uuid.uuid4().hex[:11])
        assert result.success, result.error
        answers.append(chat_text(result))
    print(f"\nanswers for six hostile paths: {set(answers)}; RSS {before:.0f} -> {rss_mb(proc):.0f} MB")
    assert len(set(answers)) == 1, answers  # one answer whatever the path: no oracle
    assert "GGUF" not in answers[0] and "file" not in answers[0].lower()
    assert str(stray) not in maps_of(proc), "a visitor-named GGUF was loaded"


def test_openai_model_on_the_owners_key_is_the_owners_model(public, recorder):
    url, _, _ = public
    base, seen = recorder
    seen.clear()
    c = client(url, 12)
    result = respond(c, ANSWERABLE, "openai", "o1-pro-expensive")
    assert result.success, result.error
    bodies = [json.loads(s["body"]) for s in seen if s["body"]]
    assert bodies, "the allowed openai backend was not called"
    assert {b.get("model") for b in bodies} == {"owner-model"}, bodies
    text = chat_text(result)
    print(f"\nchat after the owner's server failed: {text!r}")
    assert "127.0.0.1:" + base.rsplit(":", 1)[1] not in text and base not in text  # no URL for visitors

    # the page itself shows "remote model", never the URL
    config = c.http.get("/config").text
    assert base not in config and "remote model" in config


def test_backend_not_allowed_falls_back_to_the_owners(tmp_path_factory, recorder):
    root = tmp_path_factory.mktemp("no-openai")
    base, seen = recorder
    with rag_serve(root, OPENAI_BASE_URL=base + "/v1", OPENAI_API_KEY=OWNER_KEY, RAG_QUEUE_MAX_SIZE=2) as (url, _):
        seen.clear()
        result = respond(client(url, 13), ANSWERABLE, "openai", "o1-pro")
        # the radio offers only the owner's backends, so Gradio itself rejects the value (and
        # rag.app.policy would fall back to RAG_LLM if it did not)
        assert not result.success and "not in the list of choices" in (result.error or ""), result
        assert seen == [], "a visitor switched the backend to openai"

        # the queue is bounded (RAG_QUEUE_MAX_SIZE=2 here): a burst of joins beyond it is refused
        joins = []
        for n in range(10):
            c = client(url, 100 + n)
            joins.append(c.join(respond_fn(c), respond_data(ANSWERABLE))[1])
        full = [r for r in joins if r.status_code != 200]
        print(f"\n10 joins at once, queue max_size 2: {len(full)} refused: {full[0].text if full else ''}")
        assert full and all("Queue is full" in r.text for r in full)


def test_collection_cannot_be_changed(public, tmp_path):
    url, _, _ = public
    alice, mallory = client(url, 14), client(url, 15)
    secret = docgen.make_text(tmp_path / "alice.md", "# Alice\n\nThe vault code of the Nordkapp office is 4711-ZEBRA.\n")
    alice_session = uuid.uuid4().hex[:11]
    result, _ = upload(alice, secret, session=alice_session)
    assert result.success and "added" in json.dumps(result.data), result.data
    victim = "visitor-" + hashlib.sha256(alice_session.encode()).hexdigest()[:16]
    mallory_session = uuid.uuid4().hex[:11]
    fn = next(i for i, d in enumerate(mallory.config["dependencies"])
              if [t for t in d["targets"] if mallory.components.get(t[0], {}).get("props", {}).get("value") == "Use this collection"])
    switched = mallory.call(fn, [victim], session_hash=mallory_session)
    assert switched.success
    answer = respond(mallory, "What is the vault code of the Nordkapp office?", session=mallory_session)
    assert "4711" not in json.dumps(answer.data), "another visitor's collection was read"
    docs = mallory.call(mallory.named("documents")[0], [], session_hash=mallory_session)
    assert "alice.md" not in json.dumps(docs.data)


# ------------------------------------------------------------------ 2. quotas

def test_visitor_over_question_quota_is_told_while_another_is_served(public):
    url, _, _ = public
    quiet = client(url, 21)
    respond(client(url, 20), ANSWERABLE)  # warm: the model loaded and the page's code paths run once
    start = time.monotonic()
    alone = respond(quiet, ANSWERABLE)
    solo_s = time.monotonic() - start
    assert alone.success and chat_text(alone).strip()

    flood = client(url, 22)
    with ThreadPoolExecutor(8) as pool:
        floods = [pool.submit(respond, flood, ANSWERABLE, session=uuid.uuid4().hex[:11]) for _ in range(8)]
        time.sleep(1.0)
        start = time.monotonic()
        served = respond(quiet, ANSWERABLE, session=uuid.uuid4().hex[:11])
        served_s = time.monotonic() - start
        texts = [chat_text(f.result()) for f in floods]
    refused = [t for t in texts if "one question at a time" in t or "per minute" in t]
    print(f"\nalone {solo_s:.1f} s; during a flood of 8 from another address {served_s:.1f} s; "
          f"flood refused {len(refused)}/8: {refused[:1]}")
    assert served.success and chat_text(served).strip() and "⚠️" not in chat_text(served)
    assert len(refused) >= 6, texts
    assert served_s < 3 * solo_s + 15, (solo_s, served_s)


def test_upload_quota_counts_every_session_of_an_address(public, tmp_path):
    url, _, _ = public
    c = client(url, 23)
    files = [docgen.make_text(tmp_path / f"f{i}.md", f"# Note {i}\n\nBuoy {i} is painted red and green.\n") for i in range(5)]
    too_many, _ = upload(c, *files[:4], session=uuid.uuid4().hex[:11])  # 4 > 3 files per window
    assert "upload refused" in unescape(str(too_many.data)), too_many.data
    ok, _ = upload(c, *files[:2], session=uuid.uuid4().hex[:11])
    assert "added" in json.dumps(ok.data) and "refused" not in json.dumps(ok.data), ok.data
    again, _ = upload(c, *files[2:4], session=uuid.uuid4().hex[:11])  # a fresh session: same address, same budget
    text = unescape(str(again.data))
    assert "upload refused" in text and "3 files" in text, text
    other, _ = upload(client(url, 24), files[4], session=uuid.uuid4().hex[:11])
    assert "added" in json.dumps(other.data)


def test_raw_upload_route_draws_on_the_mb_budget(public, tmp_path):
    """/gradio_api/upload stores files before any handler runs: its bytes count too (1 MB here)."""
    url, _, _ = public
    c = client(url, 25)
    blob = docgen.make_text(tmp_path / "blob.txt", "lighthouse " * 60_000)  # 0.63 MB
    assert c.http.post("/gradio_api/upload", files=[("files", ("a.txt", blob.read_bytes()))]).status_code == 200
    refused = c.http.post("/gradio_api/upload", files=[("files", ("b.txt", blob.read_bytes()))])
    print(f"\nsecond 0.63 MB raw upload: {refused.status_code} {refused.text!r}")
    assert refused.status_code == 429 and "upload refused" in refused.text and "1 MB" in refused.text
    assert client(url, 26).http.post("/gradio_api/upload", files=[("files", ("c.txt", blob.read_bytes()))]).status_code == 200


# ------------------------------------------------------------------ 3. loader bounds through the server

def test_docx_of_empty_paragraphs_fails_fast_and_another_upload_is_prompt(public, tmp_path):
    url, _, _ = public
    bomb = docgen.make_empty_paragraph_docx(tmp_path / "empty.docx", 700_000)
    small = docgen.make_text(tmp_path / "tiny.md", "# Tiny\n\nThe gallery door is green.\n")
    with ThreadPoolExecutor(2) as pool:
        start = time.monotonic()
        slow = pool.submit(upload, client(url, 31), bomb, session=uuid.uuid4().hex[:11])
        time.sleep(0.3)
        fast = pool.submit(upload, client(url, 32), small, session=uuid.uuid4().hex[:11])
        tiny_result, _ = fast.result()
        tiny_s = time.monotonic() - start
        bomb_result, _ = slow.result()
        bomb_s = time.monotonic() - start
    text = unescape(str(bomb_result.data))
    print(f"\n{bomb.stat().st_size // 1024} KB DOCX of 700,000 empty paragraphs: failed after {bomb_s:.1f} s; "
          f"another visitor's upload took {tiny_s:.1f} s")
    assert "failed" in text.lower() and "more than 200,000 paragraphs" in text, text
    assert bomb_s < 30 and tiny_s < 30
    assert "added" in json.dumps(tiny_result.data)


# ------------------------------------------------------------------ 4. clean-up

def _fetch(c: RawClient, server_path: str) -> int:
    return c.http.get(c.file_url(server_path)).status_code


def test_delete_removes_the_uploaded_copy_and_gradios(public, tmp_path):
    url, _, data = public
    c = client(url, 41)
    session = uuid.uuid4().hex[:11]
    doc = docgen.make_text(tmp_path / "ferry.md", "# Ferry\n\nThe supply boat comes on Thursdays.\n")
    result, cached = upload(c, doc, session=session)
    assert "added" in json.dumps(result.data), result.data
    folder = data / "uploads" / ("visitor-" + hashlib.sha256(session.encode()).hexdigest()[:16])
    assert (folder / "ferry.md").is_file()
    assert not Path(cached[0]).exists(), "Gradio's cached copy outlived the ingest"
    assert _fetch(c, cached[0]) != 200

    fn, _ = c.named("delete")
    deleted = c.call(fn, ["ferry.md", None], session_hash=session)
    assert deleted.success, deleted.error
    assert not (folder / "ferry.md").exists(), "the uploaded copy outlived delete"


def test_expired_visitor_uploads_are_gone_from_disk_and_from_gradio(tmp_path_factory, tmp_path):
    root = tmp_path_factory.mktemp("expiry")
    with rag_serve(root, RAG_SESSION_TTL_MINUTES="0.1") as (url, _):  # 6 s idle is "expired"
        c = client(url, 42)
        session = uuid.uuid4().hex[:11]
        doc = docgen.make_text(tmp_path / "tide.md", "# Tides\n\nHigh tide at the pier is at 06:10.\n")
        result, cached = upload(c, doc, session=session)
        assert "added" in json.dumps(result.data), result.data
        stray = c.upload(docgen.make_text(tmp_path / "never-ingested.md", "# Stray\n\nNot handed to the app.\n"))[0]
        folder = root / "data" / "uploads" / ("visitor-" + hashlib.sha256(session.encode()).hexdigest()[:16])
        assert folder.is_dir()
        deadline = time.monotonic() + 120
        while folder.exists() or Path(stray).exists():
            assert time.monotonic() < deadline, (folder.exists(), Path(stray).exists())
            time.sleep(3)
            respond(client(url, 43), UNANSWERABLE)  # any visitor's activity runs the idle sweep
        assert _fetch(c, cached[0]) != 200 and _fetch(c, stray) != 200


# ------------------------------------------------------------------ 5. private mode: allowed folders only, bounded

def test_private_mode_model_paths_one_message_and_lru_unloads(tmp_path_factory, tmp_path):
    from rag.llm import resolve_local_model

    root = tmp_path_factory.mktemp("private")
    models = root / "models"
    models.mkdir()
    copies = []
    for i in range(3):
        copies.append(models / f"copy{i}.gguf")
        shutil.copy(resolve_local_model("smollm2"), copies[-1])
    (models / "folder.gguf").mkdir()
    (models / "text.gguf").write_text("no")
    outside = tmp_path / "outside.gguf"
    shutil.copy(copies[0], outside)
    with rag_serve(root, public=False, RAG_MODEL_DIRS=str(models), RAG_MAX_LOADED_MODELS=2) as (url, proc):
        c = client(url, 51)
        messages = {chat_text(respond(c, ANSWERABLE, "local", str(p)))
                    for p in (models / "missing.gguf", models / "folder.gguf", models / "text.gguf", outside, "/etc/shadow")}
        print(f"\nprivate mode, five unusable paths: {messages}")
        assert len(messages) == 1 and "not available" in next(iter(messages))
        assert str(outside) not in maps_of(proc)

        rss = []
        for p in copies:
            result = respond(c, ANSWERABLE, "local", str(p))
            assert result.success and "⚠️" not in chat_text(result), chat_text(result)
            rss.append(rss_mb(proc))
        mapped = [p.name for p in copies if str(p) in maps_of(proc)]
        print(f"after answering with 3 GGUF copies (RAG_MAX_LOADED_MODELS=2): mapped {mapped}; RSS {[round(r) for r in rss]} MB")
        assert len(mapped) <= 2 and copies[0].name not in mapped, mapped
