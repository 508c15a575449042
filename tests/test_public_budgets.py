"""Issue 22, findings 1-12: `rag serve --public` driven as the hostile visitor drove it, over the raw
Gradio queue protocol (tests/raw_gradio.py) and plain HTTP with forged headers and big bodies.

Fast tier: the app runs in-process (rag.app.web.start, the path `rag serve` takes) on a free port,
with the word-hash embedder and a scripted chat model; OCR is the real RapidOCR. Each test's
clients connect from their own loopback address (127.0.0.x): one visitor each, as the server sees it.
"""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

import docgen
from conftest import free_port
from fakes import scripted_llm
from raw_gradio import RawClient, file_data
from rag.settings import Settings

FACT = "The lens of the Skarvøy lighthouse is cleaned every Tuesday with a chamois cloth."
QUESTION = "When is the lens of the Skarvøy lighthouse cleaned?"
REPLY = "The lens is cleaned every Tuesday [1]."
OWNER_URL = "http://127.0.0.1:9/v1"  # the owner's OpenAI-compatible server (nothing listens there)


def _serve(root: Path, embedder, **overrides):
    from ingest.pipeline import Ingestor
    from rag.app.web import build_app, start

    settings = Settings(data_dir=root / "data", collection="handbook", temperature=0.0, public=True, llm="openai",
                        openai_base_url=OWNER_URL, openai_api_key="sk-owner", **overrides)
    demo = build_app(settings)
    ws = demo.workspace
    ws._embedder = embedder  # module-scoped: set before the tier's per-test patch exists
    doc = docgen.make_text(root / "docs" / "handbook.md", f"# Lighthouse handbook\n\n{FACT}\n")
    assert Ingestor(ws.store(settings.collection), settings).ingest_file(doc).status == "added"
    script = scripted_llm(*[REPLY] * 1000)
    ws.llm = lambda settings: script
    port = free_port()
    start(demo, host="127.0.0.1", port=port)
    return demo, f"http://127.0.0.1:{port}"


SMALL = dict(visitor_questions_per_minute=5, visitor_questions_in_flight=1, visitor_page_renders_per_hour=4,
             visitor_exports_per_hour=3, visitor_feedback_per_hour=3, visitor_ocr_pages_per_hour=1,
             max_request_kb=64, max_question_chars=2000)


@pytest.fixture(scope="module")
def public(tmp_path_factory, word_hash_embedder):
    """No RAG_CLIENT_IP_HEADER: the socket address is the visitor."""
    demo, url = _serve(tmp_path_factory.mktemp("public"), word_hash_embedder, **SMALL)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, word_hash_embedder):
    """RAG_CLIENT_IP_HEADER=x-forwarded-for: behind the owner's proxy."""
    demo, url = _serve(tmp_path_factory.mktemp("proxied"), word_hash_embedder, client_ip_header="x-forwarded-for", **SMALL)
    yield demo, url
    demo.close()


def raw(url: str, n: int) -> RawClient:
    return RawClient(url, local_address=f"127.0.0.{n}", timeout=60)


def http(url: str, n: int) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address=f"127.0.0.{n}"))


def ask_v1(client: httpx.Client, question: str = QUESTION, stream: bool = False, headers=None) -> httpx.Response:
    body = {"model": "groundwork-rag", "messages": [{"role": "user", "content": question}], "stream": stream}
    return client.post("/v1/chat/completions", json=body, headers=headers)


def respond(c: RawClient, question: str, session: str, headers=None):
    gate, _ = c.event(c.component_id(elem_id="question"), "submit")
    fn = next(dep.get("id", i) for i, dep in enumerate(c.config["dependencies"]) if dep.get("trigger_after") == gate)
    data = [question, [], None, None, None, 4, True, "openai", "", 0.0]  # the owner's RAG_LLM
    return c.call(fn, data, session_hash=session, trigger_id=c.component_id(elem_id="question"), headers=headers)


def upload(c: RawClient, path: Path, session: str, headers=None):
    cached = c.upload(path, headers=headers)
    fn, _ = c.named("upload")
    return c.call(fn, [[file_data(cached[0], path.name)], None], session_hash=session, headers=headers)


def open_page(c: RawClient, ref: str, session: str):
    target = c.component_id(elem_id="open-go")
    fn, _ = c.event(target, "click")
    return c.call(fn, [ref, None, None], session_hash=session, trigger_id=target)


def warnings_of(result) -> list[str]:
    return [m.get("log", "") for m in result.messages if m.get("msg") == "log" and m.get("level") == "warning"]


def shown(result) -> bool:
    """Did an open-page event show the page (its group's update says visible)?"""
    return bool(result.success and (result.data or [{}])[0].get("visible"))


# ------------------------------------------------------------------ 1. "open page" never falls back to the cwd

def test_1_open_page_after_delete_or_sweep_is_no_longer_available(public, tmp_path):
    demo, url = public
    c, session = raw(url, 11), uuid.uuid4().hex[:11]
    secret = docgen.make_pdf(tmp_path / "up" / "secret.pdf", ["Front matter of the visitor's file.", FACT])
    docgen.make_pdf(Path.cwd() / "secret.pdf", ["OWNER'S PRIVATE PAGE ONE", "OWNER'S PRIVATE PAGE TWO"])  # the server's cwd
    assert upload(c, secret, session).success
    asked = respond(c, QUESTION, session)
    assert asked.success, asked.error
    refs = re.findall(r'data-ref="(\d+:\d+)"', str(asked.data[3]))
    assert refs, "no 'open page' button for the uploaded PDF"
    before = open_page(c, refs[0], session)
    assert shown(before), (before.error, warnings_of(before))  # positive control: the visitor's own copy

    delete_fn, _ = c.named("delete")
    assert c.call(delete_fn, ["secret.pdf", None], session_hash=session).success
    after = open_page(c, refs[0], session)
    print(f"\nafter delete: shown={shown(after)}, warnings={warnings_of(after)}")
    assert not shown(after), "rendered a page after the visitor's copy was deleted (the cwd's secret.pdf)"
    assert any("no longer available" in w for w in warnings_of(after))

    # the same after the idle sweep, while the page still holds the turns
    assert upload(c, secret, session).success
    asked = respond(c, QUESTION, session)
    ref = re.findall(r'data-ref="(\d+:\d+)"', str(asked.data[3]))[0]
    assert shown(open_page(c, ref, session))
    demo.workspace.sweep(time.time() + demo.workspace.settings.session_ttl_minutes * 60 * 2)
    swept = open_page(c, ref, session)
    assert not shown(swept) and any("no longer available" in w for w in warnings_of(swept))


# ------------------------------------------------------------------ 2. exports in RAG_DATA_DIR, capped, counted; questions capped

def test_2_exports_stay_in_the_data_dir_within_a_budget_and_questions_are_capped(public):
    demo, url = public
    c, session = raw(url, 12), uuid.uuid4().hex[:11]
    in_tmp = set(glob.glob(os.path.join(tempfile.gettempdir(), "rag-export-*")))

    huge = "why " * 100_000  # 400 KB: refused by the body limit (413) before Gradio parses it
    _, resp = c.join(0, [huge], session_hash=session)
    assert resp.status_code == 413 and "RAG_MAX_REQUEST_KB" in resp.text
    long = "why " * 1000  # 4,000 chars: under the body limit, over RAG_MAX_QUESTION_CHARS
    refused = respond(c, long, session)
    said = json.dumps(refused.data)
    assert "RAG_MAX_QUESTION_CHARS" in said and long not in said
    for _ in range(5):  # the refusal spent no question quota (5 per minute)
        assert "too many questions" not in json.dumps(respond(c, QUESTION, session).data)

    export = c.component_id(elem_id="export-md")
    fn, _ = c.event(export, "click")
    results = [c.call(fn, [None], session_hash=session, trigger_id=export) for _ in range(10)]
    files = [r.data[0].get("value") for r in results if r.success and r.data[0].get("value")]
    refusals = [w for r in results for w in warnings_of(r)]
    print(f"\n10 exports: {len(files)} written, {len(refusals)} refused; first refusal: {refusals[:1]}")
    exports = demo.workspace.settings.data_dir / "exports"
    assert len(files) == 3 and len(refusals) == 7 and "RAG_VISITOR_EXPORTS_PER_HOUR" in refusals[0]
    assert len(list(exports.glob("*/chat.md"))) == 3
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "rag-export-*"))) == in_tmp, "an export went to /tmp"

    from rag.app.feedback import ExportTooLarge, sweep_exports, write_export

    with pytest.raises(ExportTooLarge, match="RAG_MAX_EXPORT_MB"):
        write_export(exports, "x" * 3000, "md", 2000, 3600)
    assert sweep_exports(exports, 3600, now=time.time() + 7200) == 3 and not list(exports.iterdir())


# ------------------------------------------------------------------ 3/4/12. one client-address rule

def test_3_forged_x_forwarded_for_is_ignored_without_a_configured_header(public):
    _, url = public
    with http(url, 1) as client:  # from 127.0.0.1, the address uvicorn trusted proxy headers from
        codes = [ask_v1(client, headers={"X-Forwarded-For": f"6.6.6.{i}"}).status_code for i in range(8)]
    print(f"\n8 /v1 questions, 8 forged X-Forwarded-For, one address: {codes}")
    assert codes.count(200) == 5 and codes.count(429) == 3, codes


def test_4_with_the_header_the_rightmost_value_is_the_visitor_on_every_route(proxied):
    demo, url = proxied
    quotas = demo.workspace.quotas
    forged = lambda i: [("X-Forwarded-For", f"6.6.6.{i}"), ("X-Forwarded-For", "9.9.9.4")]  # visitor's line first
    with http(url, 14) as client:
        codes = [ask_v1(client, headers=forged(i)).status_code for i in range(8)]
    print(f"\n8 /v1 questions, forged first lines, proxy's line last: {codes}")
    assert codes.count(200) == 5 and codes.count(429) == 3, codes
    assert "9.9.9.4" in quotas._usage and not any(k.startswith("6.6.6.") for k in quotas._usage)

    c, session = raw(url, 14), uuid.uuid4().hex[:11]
    web = respond(c, QUESTION, session, headers=[("X-Forwarded-For", "6.6.6.99"), ("X-Forwarded-For", "9.9.9.4")])
    assert "too many questions" in json.dumps(web.data)  # the web question is the same visitor
    note = docgen.make_text(Path.cwd() / "note.md", "# Note\n\nA short note.\n")
    upload(c, note, session, headers=[("X-Forwarded-For", "6.6.6.98, 9.9.9.4")])
    assert quotas._usage["9.9.9.4"].uploads, "the upload was charged to another key"


def test_12_ipv6_64_and_mapped_ipv4_are_one_visitor(proxied):
    _, url = proxied
    addresses = ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::9", "[2001:db8:5:6::3]:443",
                 "2001:db8:5:6::4", "2001:db8:5:6::5"]
    mapped = ["::ffff:9.9.8.7", "9.9.8.7", "::FFFF:9.9.8.7", "9.9.8.7", "::ffff:9.9.8.7", "9.9.8.7"]
    with http(url, 15) as client:
        six = [ask_v1(client, headers={"X-Forwarded-For": a}).status_code for a in addresses]
        four = [ask_v1(client, headers={"X-Forwarded-For": a}).status_code for a in mapped]
    print(f"\none /64, six addresses: {six}; ::ffff:9.9.8.7 and 9.9.8.7 alternating: {four}")
    assert six == [200] * 5 + [429] and four == [200] * 5 + [429]


# ------------------------------------------------------------------ 5/6/10/11. the /v1 API

def test_5_v1_errors_do_not_show_the_owners_base_url(public, monkeypatch):
    demo, url = public
    from rag.llm import make_llm

    ws = demo.workspace
    monkeypatch.setattr(ws, "llm", lambda settings: make_llm(settings.model_copy(update={"llm_timeout": 5})))
    with http(url, 16) as client:
        plain = ask_v1(client)
        streamed = ask_v1(client, stream=True)
    print(f"\n/v1 error with the owner's server down: {plain.status_code} {plain.text[:200]}")
    assert plain.status_code >= 400 or "error" in plain.text
    for text in (plain.text, streamed.text):
        assert OWNER_URL not in text and "127.0.0.1:9" not in text, text


def test_6_a_10_mb_body_is_refused_before_it_is_read(public, tmp_path):
    _, url = public
    question = "x" * (10 * 2**20)
    rss = lambda: int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    with http(url, 17) as client:
        before = rss()
        started = time.perf_counter()
        resp = ask_v1(client, question)
        took = time.perf_counter() - started
        chunked = client.post("/v1/chat/completions", content=iter([b'{"messages": "', b"x" * (200 * 1024), b'"}']),
                              headers={"content-type": "application/json"})
        short_long = ask_v1(client, "y" * 3000)  # under the body limit, over RAG_MAX_QUESTION_CHARS
    print(f"\n10 MB /v1 body: {resp.status_code} in {took * 1000:.0f} ms (client side), "
          f"server RSS {before:.0f} -> {rss():.0f} MB; chunked 200 KB: {chunked.status_code}; "
          f"3,000-char question: {short_long.status_code}")
    assert resp.status_code == 413 and "RAG_MAX_REQUEST_KB" in resp.json()["error"]["message"]
    assert chunked.status_code == 413
    assert short_long.status_code == 400 and "RAG_MAX_QUESTION_CHARS" in short_long.text
    assert rss() - before < 100  # the body was never held by the server (this process: client and server)


def test_6_the_body_limit_comes_before_the_login(tmp_path, word_hash_embedder):
    from rag.app.web import build_app, start

    demo = build_app(Settings(data_dir=tmp_path / "data", max_request_kb=64))
    port = free_port()
    start(demo, host="127.0.0.1", port=port, auth="alice:s3cret")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            big = ask_v1(client, "x" * (2 * 2**20))
            small = ask_v1(client, "x")
        assert big.status_code == 413 and small.status_code == 401
    finally:
        demo.close()


def test_10_v1_on_a_collection_that_does_not_exist_is_a_clear_404(tmp_path, word_hash_embedder):
    from rag.app.web import build_app, start

    demo = build_app(Settings(data_dir=tmp_path / "data"))  # nothing ingested: "default" does not exist
    port = free_port()
    start(demo, host="127.0.0.1", port=port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            plain, streamed = ask_v1(client), ask_v1(client, stream=True)
        print(f"\n/v1 on a missing collection: {plain.status_code} {plain.json()}")
        for resp in (plain, streamed):
            assert resp.status_code == 404, resp.text
            assert "'default' does not exist" in resp.json()["error"]["message"] and "TypeError" not in resp.text
    finally:
        demo.close()


def test_11_a_stream_over_quota_is_a_429_before_it_starts(public):
    _, url = public
    with http(url, 18) as client:
        codes = [ask_v1(client, stream=True).status_code for _ in range(7)]
        last = ask_v1(client, stream=True)
    print(f"\n7 streamed /v1 questions from one address: {codes}")
    assert codes == [200] * 5 + [429] * 2
    assert last.status_code == 429 and last.headers["content-type"].startswith("application/json")
    assert "too many questions" in last.json()["error"]["message"]


# ------------------------------------------------------------------ 7. OCR pages and seconds within a budget

def test_7_ocr_pages_are_a_per_address_budget_in_the_upload_path(public, tmp_path):
    from docgen_scans import make_photo, make_scanned_pdf

    demo, url = public
    c, session = raw(url, 19), uuid.uuid4().hex[:11]
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [["The keeper logs the weather at dawn."],
                                                    ["The fog horn is tested on Mondays."],
                                                    ["Visitors may climb the tower in summer."]])
    first = upload(c, scan, session)
    table = str(first.data[0])
    print(f"\nscanned 3-page PDF with a 1-page OCR budget: {table[-260:]}")
    assert "RAG_VISITOR_OCR_PAGES_PER_HOUR" in table and "2 pages without a usable text layer were not read" in table
    photo = make_photo(tmp_path / "sign.png", ["Mind the steps"])
    second = upload(c, photo, session)
    assert "FAILED" in str(second.data[0]) and "OCR refused" in str(second.data[0])


def test_7_ocr_seconds_are_a_budget_too(tmp_path):
    from docgen_scans import make_scanned_pdf
    from ingest import ocr
    from ingest.formats import load_file
    from rag.app.quota import OcrMeter, VisitorQuotas

    quotas = VisitorQuotas(Settings(visitor_ocr_pages_per_hour=100, visitor_ocr_seconds_per_hour=0.01))
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [["The keeper logs the weather at dawn."]] * 3)
    meter = OcrMeter(quotas, "10.0.0.1")
    with ocr.metered(meter):
        load_file(scan)
    spent = quotas.used("10.0.0.1", "ocr_seconds")
    print(f"\nOCR seconds budget 0.01 s: pages read {quotas.used('10.0.0.1', 'ocr_pages'):g} of 3, {spent:.2f} s spent")
    assert quotas.used("10.0.0.1", "ocr_pages") == 1 and "RAG_VISITOR_OCR_SECONDS_PER_HOUR" in meter.refused


# ------------------------------------------------------------------ 8. page renders cached and counted

def test_8_open_page_renders_are_cached_and_counted(public, tmp_path, monkeypatch):
    from rag.app import page_image

    demo, url = public
    c, session = raw(url, 20), uuid.uuid4().hex[:11]
    pdf = docgen.make_pdf(tmp_path / "manual.pdf", ["Front matter.", FACT])
    assert upload(c, pdf, session).success
    ref = re.findall(r'data-ref="(\d+:\d+)"', str(respond(c, QUESTION, session).data[3]))[0]
    renders, real = [], page_image.render_page
    monkeypatch.setattr(page_image, "render_page", lambda *a: renders.append(a) or real(*a))
    results = [open_page(c, ref, session) for _ in range(10)]
    opened = sum(shown(r) for r in results)
    refused = [w for r in results for w in warnings_of(r)]
    print(f"\n10 opens of one page: {opened} shown, {len(refused)} refused, {len(renders)} rendered")
    assert opened == 4 and len(refused) == 6 and "RAG_VISITOR_PAGE_RENDERS_PER_HOUR" in refused[0]
    assert len(renders) == 1


# ------------------------------------------------------------------ 9. feedback capped per visitor and in total

def test_9_feedback_is_capped_per_visitor_and_in_total(public, tmp_path):
    demo, url = public
    c, session = raw(url, 21), uuid.uuid4().hex[:11]
    assert respond(c, QUESTION, session).success
    chat = [{"role": "user", "content": [{"type": "text", "text": QUESTION}]},
            {"role": "assistant", "content": [{"type": "text", "text": REPLY}]}]
    like, _ = c.event(c.component_id(elem_id="chat"), "like")
    log = demo.workspace.settings.data_dir / "feedback.jsonl"
    size = log.stat().st_size if log.exists() else 0
    results = [c.call(like, [chat, None], session_hash=session, event_data={"index": 1, "value": REPLY, "liked": True})
               for _ in range(20)]
    refused = [w for r in results for w in warnings_of(r)]
    added = (log.stat().st_size if log.exists() else 0) - size
    print(f"\n20 thumbs from one address: {20 - len(refused)} recorded ({added} bytes), {len(refused)} refused")
    assert all(r.success for r in results) and added > 0
    assert len(refused) == 17 and "RAG_VISITOR_FEEDBACK_PER_HOUR" in refused[0]

    from rag.app.feedback import FeedbackFull, FeedbackLog

    small = FeedbackLog(tmp_path, max_bytes=3000)
    turn = {"question": "q", "answer": "a" * 1000, "citations": [], "settings": {}}
    small.record("up", turn)
    small.record("up", turn)
    with pytest.raises(FeedbackFull, match="RAG_FEEDBACK_MAX_MB"):
        small.record("up", turn)
    assert (tmp_path / "feedback.jsonl").stat().st_size <= 3000
