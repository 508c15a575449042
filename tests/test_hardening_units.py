"""The hardening rules on their own (fast tier): visitor policy, quotas, inert Markdown, loader bounds.

The same rules are proved end to end against a running public `rag serve` in test_public_raw.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import docgen
from ingest.formats import base as loaders
from ingest.formats import LoadError, load_file
from rag.app import policy
from rag.errors import ConfigError
from rag.app.markup import inert
from rag.app.quota import QuotaExceeded, VisitorQuotas, client_key
from rag.settings import Settings


def owner(tmp_path, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "data", **kw)


# --------------------------------------------------------------------------- policy: public mode

def test_public_visitor_cannot_pick_a_model_path_backend_or_collection(tmp_path):
    s = owner(tmp_path, public=True, openai_api_key="sk-owner", openai_model="gpt-4o-mini")
    for path in ("/etc/shadow", "/proc/self/environ", str(tmp_path), "/nonexistent.gguf"):
        out = policy.visitor_overrides(s, 4, True, "local", path, 0.1)
        assert out["llm"] == "local" and out["local_model"] == s.local_model
    out = policy.visitor_overrides(s, 4, True, "openai", "o1-pro", 0.1)
    assert out["llm"] == "local", "openai is not in RAG_PUBLIC_BACKENDS"
    assert policy.chosen_collection(s, "someone-elses") is None


def test_public_allowed_lists_come_from_the_owner(tmp_path):
    s = owner(tmp_path, public=True, openai_api_key="sk-owner", openai_model="gpt-4o-mini",
              public_backends="openai", public_models="smollm2, gpt-4.1-nano")
    assert policy.allowed_backends(s) == ["local", "openai"]
    assert policy.visitor_overrides(s, backend="openai", model="o1-pro")["openai_model"] == "gpt-4o-mini"
    assert policy.visitor_overrides(s, backend="openai", model="gpt-4.1-nano")["openai_model"] == "gpt-4.1-nano"
    # the browser bug: the local model's name sent as the OpenAI model is not used
    assert policy.visitor_overrides(s, backend="openai", model="gemma3-270m")["openai_model"] == "gpt-4o-mini"
    assert policy.visitor_overrides(s, backend="local", model="SmolLM2")["local_model"] == "smollm2"
    assert policy.visitor_overrides(s, backend="local", model="gpt-4.1-nano")["local_model"] == s.local_model


def test_numbers_are_clamped_and_junk_is_the_owners_value(tmp_path):
    s = owner(tmp_path)
    out = policy.visitor_overrides(s, k=10_000, temperature=-5)
    assert out["k"] == 12 and out["temperature"] == 0.0
    out = policy.visitor_overrides(s, k="many", temperature=float("nan"))
    assert out["k"] == s.k and out["temperature"] == s.temperature


# --------------------------------------------------------------------------- policy: private mode

def _gguf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + b"\0" * 60)
    return path


def test_private_model_path_is_one_message_whatever_the_path(tmp_path):
    models = tmp_path / "models"
    good = _gguf(models / "mine.gguf")
    (models / "folder.gguf").mkdir()
    (models / "text.gguf").write_text("not a model")
    outside = _gguf(tmp_path / "elsewhere" / "other.gguf")
    (models / "link.gguf").symlink_to(outside)
    s = owner(tmp_path, model_dirs=str(models))
    assert policy.visitor_overrides(s, backend="local", model=str(good))["local_model"] == str(good.resolve())
    messages = set()
    for bad in (models / "missing.gguf", models / "folder.gguf", models / "text.gguf", outside,
                models / "link.gguf", models / ".." / "elsewhere" / "other.gguf", Path("/etc/shadow"),
                Path("/proc/self/environ"), models):
        with pytest.raises(ConfigError) as err:
            policy.visitor_overrides(s, backend="local", model=str(bad))
        messages.add(str(err.value))
    assert messages == {policy.NOT_AVAILABLE}


def test_private_mode_without_model_dirs_allows_only_packaged_and_configured(tmp_path):
    gguf = _gguf(tmp_path / "m.gguf")
    s = owner(tmp_path, local_model=str(gguf))
    assert policy.visitor_overrides(s, backend="local", model=str(gguf))["local_model"] == str(gguf)
    assert policy.visitor_overrides(s, backend="local", model="smollm2")["local_model"] == "smollm2"
    with pytest.raises(ConfigError):
        policy.visitor_overrides(s, backend="local", model=str(_gguf(tmp_path / "other.gguf")))


def test_redact_hides_the_base_url_in_public_mode(tmp_path):
    s = owner(tmp_path, public=True, openai_base_url="http://10.1.2.3:8080/v1")
    text = "cannot reach the OpenAI-compatible server at OPENAI_BASE_URL=http://10.1.2.3:8080/v1 (refused)"
    assert "10.1.2.3" not in policy.redact(text, s)
    lines = policy.describe_backends_for_visitors(s)
    assert "remote model" in lines[1] and "10.1.2.3" not in " ".join(lines)


# --------------------------------------------------------------------------- quotas

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_upload_quota_per_window_says_why(tmp_path):
    clock = Clock()
    q = VisitorQuotas(owner(tmp_path, visitor_upload_files=3, visitor_upload_mb=1, session_ttl_minutes=10), clock)
    q.admit_upload("1.2.3.4", 2, 1000)
    with pytest.raises(QuotaExceeded, match="3 files and 1 MB per 10 minutes"):
        q.admit_upload("1.2.3.4", 2, 1000)
    with pytest.raises(QuotaExceeded, match="MB"):
        q.admit_upload("1.2.3.4", 1, 2 * 1024 * 1024)
    q.admit_upload("5.6.7.8", 3, 1000)  # another address has its own budget
    clock.now += 601
    q.admit_upload("1.2.3.4", 3, 1000)  # the window moved on


def test_questions_in_flight_and_per_minute(tmp_path):
    clock = Clock()
    q = VisitorQuotas(owner(tmp_path, visitor_questions_in_flight=1, visitor_questions_per_minute=3), clock)
    with q.question("a"):
        with pytest.raises(QuotaExceeded, match="one question at a time"):
            with q.question("a"):
                pass
        with q.question("b"):
            pass
    with q.question("a"), pytest.raises(QuotaExceeded):
        with q.question("a"):
            pass
    with q.question("a"):  # the third of this minute
        pass
    with pytest.raises(QuotaExceeded, match="3 per minute"):
        with q.question("a"):
            pass
    clock.now += 61
    with q.question("a"):
        pass


def test_client_key_uses_the_proxy_header_only_when_configured():
    headers = {"x-forwarded-for": "6.6.6.6, 10.0.0.9"}
    assert client_key("127.0.0.1", headers) == "127.0.0.1"
    assert client_key("127.0.0.1", headers, "x-forwarded-for") == "10.0.0.9"


# --------------------------------------------------------------------------- inert Markdown

def test_inert_reads_the_same_and_holds_no_markup():
    import markdown_it

    hostile = ('![x](http://127.0.0.1:9/leak?data=secret) <img src=http://h/a.png onerror=alert(1)> '
               '[site](http://h/) <http://h/auto> www.example.com http://h/bare ![r][ref]\n\n[ref]: http://h/r.png '
               '`code` $$x$$ &lt;b&gt;')
    html = markdown_it.MarkdownIt("commonmark").render(inert(hostile))
    assert "<img" not in html and "<a " not in html and "<code" not in html, html
    import html as html_mod
    import re

    assert " ".join(html_mod.unescape(re.sub(r"<[^>]+>", "", html)).split()) == " ".join(hostile.split())


# --------------------------------------------------------------------------- loader bounds

class _CountingBudget(loaders.Budget):
    """The loaders' own budget, remembering each instance: how far a parse got is its count."""

    made: list = []

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        _CountingBudget.made.append(self)


@pytest.fixture
def budgets(monkeypatch):
    _CountingBudget.made = []
    import importlib

    for name in ("docx", "epub", "html", "pptx", "spreadsheet"):
        module = importlib.import_module(f"ingest.formats.{name}")
        if hasattr(module, "Budget"):
            monkeypatch.setattr(module, "Budget", _CountingBudget)
    return _CountingBudget.made


class _CountingSoup:
    """bs4's parser, counted: a refusal "before parsing" is one with no parse."""

    calls = 0
    sizes: list[int] = []

    def __new__(cls, *a, **k):
        _CountingSoup.calls += 1
        _CountingSoup.sizes.append(len(a[0]) if a and isinstance(a[0], (bytes, str)) else 0)
        return _REAL_SOUP(*a, **k)


import bs4 as _bs4  # noqa: E402

_REAL_SOUP = _bs4.BeautifulSoup


@pytest.fixture
def soups(monkeypatch):
    _CountingSoup.calls, _CountingSoup.sizes = 0, []
    monkeypatch.setattr(_bs4, "BeautifulSoup", _CountingSoup)
    return _CountingSoup


def test_docx_of_empty_paragraphs_fails_fast_with_a_reason(tmp_path, budgets, monkeypatch):
    """Bounded by the code's own budget, not a stopwatch: the parse stops at the budget's
    paragraph + 1 (the budget at 20,000 of 70,000 here, the default 200,000 of 700,000 scaled
    down tenfold for the fast tier; test_guard_breakages checks the default)."""
    monkeypatch.setattr(loaders, "MAX_ELEMENTS", 20_000)
    monkeypatch.setattr(loaders, "MAX_SECONDS", 3600.0)
    bomb = docgen.make_empty_paragraph_docx(tmp_path / "empty.docx", 70_000)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(LoadError, match="more than 20,000 paragraphs"):
        load_file(bomb)
    (budget,) = budgets
    assert budget.count == loaders.MAX_ELEMENTS + 1


def test_docx_style_lookup_once_keeps_headings(tmp_path):
    doc = docgen.make_docx(tmp_path / "m.docx", [("heading", 1, "Install"), ("para", "Plug it in."),
                                                 ("heading", 2, "Calibrate"), ("para", "Every 90 days.")])
    sections = load_file(doc)
    assert [d.metadata.get("heading") for d in sections] == ["Install", "Install > Calibrate"]


def test_many_paragraphs_under_the_bound_load_quickly(tmp_path, monkeypatch):
    """What made 700,000 paragraphs take 150 s was `paragraph.style`, a search of the styles part
    per paragraph: it is never called (style names are looked up once), counted, not timed."""
    import docx
    from docx.text.paragraph import Paragraph

    document = docx.Document()
    for i in range(2_000):
        document.add_paragraph(f"Paragraph {i} about lighthouses.")
    document.save(str(tmp_path / "long.docx"))
    lookups = []
    real = Paragraph.style
    monkeypatch.setattr(Paragraph, "style", property(lambda p: lookups.append(1) or real.fget(p)))
    sections = load_file(tmp_path / "long.docx")
    assert "Paragraph 1999 about lighthouses." in sections[-1].page_content
    assert lookups == []


def _hostile_html(n: int, encoding: str = "utf-8") -> bytes:
    return ("<html><body>" + "<p>x</p>" * n + "</body></html>").encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_html_of_too_many_elements_fails_fast_with_a_reason(tmp_path, encoding, soups):
    """2,000,000 empty <p> (16 MB, under RAG_MAX_FILE_MB) took 74 s and 2.3 GB to parse before:
    now refused from a count of its start tags, without parsing at all."""
    bomb = tmp_path / "many.html"
    bomb.write_bytes(_hostile_html(2_000_000, encoding))
    with pytest.raises(LoadError, match="more than 200,000 HTML elements"):
        load_file(bomb)
    assert soups.calls == 0


def test_html_under_the_element_bound_loads(tmp_path):
    page = tmp_path / "long.html"
    page.write_text("<html><body><h1>Log</h1>" + "".join(f"<p>Entry {i}: lamp lit.</p>" for i in range(5_000))
                    + "</body></html>", encoding="utf-8")
    sections = load_file(page)
    assert sections and "Entry 4999: lamp lit." in sections[-1].page_content


def test_epub_whose_chapters_hold_too_many_elements_fails_with_a_reason(tmp_path, soups, monkeypatch):
    """One element budget for the whole book (here 20,000, so the test parses 14,000 elements,
    not 140,000; the time limit out of the way: on 2 shared cores the full-size book hit it)."""
    import random

    from docgen_scans import make_epub

    monkeypatch.setattr(loaders, "MAX_ELEMENTS", 20_000)
    monkeypatch.setattr(loaders, "MAX_SECONDS", 3600.0)
    rng = random.Random(7)  # varied words: the zip's compression ratio stays under the zip-bomb limit
    chapter = "".join(f"<p>{rng.getrandbits(40):x}</p>" for _ in range(7_000))
    book = make_epub(tmp_path / "many.epub", [(f"Part {i}", chapter) for i in range(1, 4)])
    with pytest.raises(LoadError, match="more than 20,000 HTML elements in its chapters"):
        load_file(book)
    # the third chapter is refused from its tag count, never parsed
    assert sum(size > 50_000 for size in soups.sizes) == 2, soups.sizes


# --------------------------------------------------------------------------- the raw upload route's budget

def test_upload_route_is_charged_and_refused_with_a_reason(tmp_path):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from rag.app.upload_guard import UploadBudget

    async def stored(request):
        return PlainTextResponse(f"stored {len(await request.body())}")

    quotas = VisitorQuotas(owner(tmp_path, public=True, visitor_upload_mb=1))
    app = Starlette(routes=[Route("/gradio_api/upload", stored, methods=["POST"]), Route("/other", stored, methods=["POST"])],
                    middleware=[Middleware(UploadBudget, quotas=quotas, header="x-forwarded-for")])
    http = TestClient(app)
    half = b"x" * 600_000
    assert http.post("/gradio_api/upload", content=half, headers={"x-forwarded-for": "9.9.9.9"}).status_code == 200
    refused = http.post("/gradio_api/upload", content=half, headers={"x-forwarded-for": "9.9.9.9"})
    assert refused.status_code == 429 and "1 MB per 60 minutes" in refused.text
    assert http.post("/gradio_api/upload", content=half, headers={"x-forwarded-for": "8.8.8.8"}).status_code == 200
    assert http.post("/other", content=half * 3, headers={"x-forwarded-for": "9.9.9.9"}).status_code == 200
