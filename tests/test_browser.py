"""The Gradio app in a real browser: upload a PDF, ask, watch the answer stream, check sources.

Chromium comes from Debian (`playwright install` needs a download this project does not rely
on); the fixture installs it with apt-get when it is missing, and fails if it cannot. The app
runs in-process on a free loopback port with the real embedder and the packaged SmolLM2.

`RAG_SCREENSHOT=1 pytest tests/test_browser.py` also writes docs/screenshot.png (1400x900).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from itertools import pairwise
from pathlib import Path

import pytest

import docgen
from conftest import free_port
from rag.settings import Settings

pytestmark = pytest.mark.slow

# read at import: the autouse _isolated_env fixture removes every RAG_* variable before a test
SCREENSHOT = os.environ.get("RAG_SCREENSHOT") == "1"
SCREENSHOT_PATH = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"

CHROMIUM = "/usr/bin/chromium"
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",  # without these chromium floods a closed network
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
FACT = "The warehouse in Tromsø was closed in March because of flooding."
QUESTION = "Why was the warehouse in Tromsø closed?"
ANSWER_TIMEOUT_S = 300  # SmolLM2 on a shared 2-core CPU
UPLOAD_TIMEOUT_MS = 180_000  # first upload loads the embedder


def _tail(text: str, n: int = 1500) -> str:
    return (text or "")[-n:]


def _apt_install(packages: list[str]) -> None:
    """apt-get update + install, as root, each step bounded; pytest.fail with the reason otherwise."""
    what = " ".join(packages)
    if os.name != "posix" or os.geteuid() != 0:
        pytest.fail(f"the browser tests need {what}, and this is not root, so they cannot be installed: "
                    f"run `sudo apt-get update && sudo apt-get install -y {what}` and re-run")
    if shutil.which("apt-get") is None:
        pytest.fail(f"the browser tests need {what}, and there is no apt-get to install it with")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages]):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(cmd)}` did not finish within 600 s; install {what} by hand")
        if proc.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}; the browser tests "
                        f"need {what}:\n{_tail(proc.stdout)}\n{_tail(proc.stderr)}")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get if it is missing; a clear failure if it cannot be.
    For the screenshot also a colour emoji font, or the status icons (✅ added) render as boxes."""
    packages = [] if Path(CHROMIUM).exists() else ["chromium"]
    if SCREENSHOT and not Path(EMOJI_FONT).exists():
        packages.append("fonts-noto-color-emoji")
    if packages:
        _apt_install(packages)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def app_url(tmp_path):
    from rag.web import build_app

    demo = build_app(Settings(data_dir=tmp_path / "data", collection="browser", temperature=0.0))
    port = free_port()
    demo.queue()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#question textarea").wait_for(state="visible")
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def report_pdf(tmp_path) -> Path:
    return docgen.make_pdf(
        tmp_path / "upload" / "report.pdf",
        [
            "Quarterly report. Revenue grew in the northern region.",
            FACT,
            "Appendix: the auditor was Karin Lindqvist.",
        ],
    )


def upload(page, path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator("#upload input[type=file]").set_input_files(str(path))
    status = page.locator("#upload-status")
    try:
        status.filter(has_text="added").wait_for(timeout=UPLOAD_TIMEOUT_MS)
    except PlaywrightTimeout:
        pytest.fail(f"upload status never said 'added'; it shows: {status.inner_text()!r}")


def document_rows(page) -> list[list[str]]:
    """The body rows of the #documents table, as cell texts (Gradio 6 renders a virtual grid)."""
    rows = page.locator("#documents [role=row]:has([role=gridcell])").all()
    return [[c.strip() for c in row.locator("[role=gridcell]").all_inner_texts()] for row in rows]


def test_upload_ask_streams_answer_with_page_citation(page, report_pdf):
    from playwright.sync_api import Error as PlaywrightError

    upload(page, report_pdf)

    page.locator("#question textarea").fill(QUESTION)
    page.locator("#ask").click()

    bot = page.locator("#chat .bot-row").last
    sources = page.locator("#sources")
    lengths: list[int] = []  # assistant text lengths seen while generating
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while "page 2" not in (sources.inner_text() or ""):
        if time.monotonic() > deadline:
            pytest.fail(f"no sources with 'page 2' after {ANSWER_TIMEOUT_S} s; chat: "
                        f"{page.locator('#chat').inner_text()!r}; sources: {sources.inner_text()!r}")
        if bot.count():
            with contextlib.suppress(PlaywrightError):  # the bubble re-rendered meanwhile
                lengths.append(len(bot.inner_text(timeout=1000).strip()))
        time.sleep(0.1)

    answer = bot.inner_text().strip()
    assert answer, "the assistant's answer is empty"
    assert "⚠️" not in answer, answer
    grew = [b for a, b in pairwise(lengths) if 0 < a < b]
    # the model may finish between two polls, so streaming is reported, not required
    print(f"\nassistant text lengths while generating: {lengths[:3]}…{lengths[-3:]}; "
          f"streaming {'observed' if grew else 'not observed'}; answer: {answer!r}")

    text = sources.inner_text()
    assert "report.pdf, page 2" in text, text
    assert "Tromsø" in text, text  # the quoted passage
    # The quote the answer rests on is highlighted inside its passage.
    marked = sources.locator("mark")
    assert marked.count() >= 1, sources.inner_html()
    quote = marked.first.inner_text()
    assert quote.strip() and quote.strip() in " ".join(text.split()), (quote, text)

    if SCREENSHOT:
        SCREENSHOT_PATH.parent.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(500)  # let the last render settle
        page.screenshot(path=str(SCREENSHOT_PATH))


def test_document_table_lists_and_deletes_upload(page, report_pdf):
    upload(page, report_pdf)

    page.locator("#documents [role=gridcell]", has_text="report.pdf").wait_for()
    rows = document_rows(page)
    assert len(rows) == 1 and rows[0][0] == "report.pdf", rows
    assert rows[0][1].isdigit() and int(rows[0][1]) >= 1, rows  # the chunk count
    assert rows[0][2] == "yours", rows

    choice = page.get_by_label("Delete a document")
    choice.click()
    page.get_by_role("option", name="report.pdf").click()
    page.get_by_role("button", name="Delete", exact=True).click()

    deadline = time.monotonic() + 60
    while any(r and r[0] == "report.pdf" for r in document_rows(page)):
        if time.monotonic() > deadline:
            pytest.fail(f"report.pdf still listed after Delete: {document_rows(page)}")
        time.sleep(0.2)
