"""The chat in a real browser (Debian chromium + Playwright, real embedder and Gemma 3 270M):
example questions, every source listed with the quote marked, [n] bringing up its source, the PDF
page opened with the quote highlighted, New chat, and the page at phone width; a second question
refused visibly and Stop with a slowly streaming scripted model.

`RAG_SCREENSHOT=1` also writes docs/screenshot-sources.png and docs/screenshot-phone.png.
"""

from __future__ import annotations

import time

import pytest

from conftest import SCREENSHOT, open_page
from test_browser import ANSWER_TIMEOUT_S, QUESTION, SCREENSHOT_PATH, ask, upload

pytestmark = pytest.mark.slow

DOCS = SCREENSHOT_PATH.parent
APP_SETTINGS = {"max_answer_tokens": 96}  # conftest's app_url: short answers


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(0.2)


def test_sources_links_pdf_page_and_new_chat(browser, app_url, report_pdf):
    context, page = open_page(browser, app_url)
    try:
        upload(page, report_pdf)
        chat = page.locator("#chat")
        # empty state: what is loaded, and example questions drawn from it
        wait_until(lambda: "1 document loaded" in chat.inner_text(), 60, "the empty state to list report.pdf")
        assert "report.pdf" in chat.inner_text()

        page.locator("#question textarea").fill(QUESTION)
        page.locator("#ask").click()
        sources = page.locator("#sources")
        wait_until(lambda: " cited of " in sources.inner_text(), ANSWER_TIMEOUT_S, "the answer's sources")
        text = sources.inner_text()
        assert "report.pdf, page 2" in text and "not cited" in text, text  # every retrieved passage, cited or not
        assert "similarity" not in text
        assert sources.locator(".src.cited mark").count() >= 1, "no quote highlighted in a cited passage"
        first = sources.locator(".src").first
        assert "cited" in first.get_attribute("class")

        # [n] in the answer brings up its source
        link = chat.locator('a[href^="#src-"]').first
        assert link.count(), f"the answer has no [n] link: {chat.inner_text()!r}"
        target = link.get_attribute("href")[1:]
        sources.locator("details").first.evaluate("d => d.open = false")
        link.click()
        page.wait_for_function(f"document.getElementById('{target}').closest('details').open")
        page.wait_for_function(f"""(() => {{ const r = document.getElementById('{target}').getBoundingClientRect();
                                    return r.top >= 0 && r.bottom <= window.innerHeight; }})()""")

        # the original PDF page, with the quote marked
        sources.locator(".src.cited button.open-page").first.click()
        view = page.locator("#page-image")  # (the group's id is on two nested divs)
        view.wait_for(state="visible")
        view.locator("img").wait_for(state="visible")
        label = view.inner_text()
        assert "report.pdf, page" in label and "could not be marked" not in label, label
        if SCREENSHOT:
            page.screenshot(path=str(DOCS / "screenshot-sources.png"), full_page=True)
        page.locator("#close-page").click()
        view.wait_for(state="hidden")

        # New chat: no messages, no old sources, the example questions back
        page.locator("#new-chat").click()
        wait_until(lambda: chat.locator(".bot-row").count() == 0, 30, "the chat to clear")
        wait_until(lambda: "Sources appear here" in sources.inner_text(), 30, "the sources to clear")
        wait_until(lambda: "1 document loaded" in chat.inner_text(), 30, "the empty state to return")
    finally:
        context.close()


def test_phone_width_has_no_sideways_scroll_and_says_the_right_thing(browser, app_url, report_pdf):
    context, page = open_page(browser, app_url, width=390, height=844)
    try:
        intro = page.locator("text=Ask your documents").first.locator("xpath=..").inner_text()
        assert "left" not in intro and "right" not in intro, intro
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page scrolls sideways by {overflow}px at 390px"
        box = page.locator("#question textarea").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.get_by_role("tab", name="Documents").wait_for(state="visible")
        if SCREENSHOT:
            page.screenshot(path=str(DOCS / "screenshot-phone.png"), full_page=True)

        # the documents table keeps its columns side by side at 390 px (it once showed one)
        upload(page, report_pdf)
        cell = page.locator("#documents [role=gridcell]", has_text="report.pdf")
        cell.wait_for()
        row = cell.locator("xpath=ancestor::*[@role='row'][1]")
        boxes = [c.bounding_box() for c in row.locator("[role=gridcell]").all()]
        assert len(boxes) == 4 and all(boxes), boxes
        assert len({round(b["y"]) for b in boxes}) == 1, boxes  # one line, not stacked
        assert all(b["x"] >= 0 for b in boxes) and boxes[1]["x"] + boxes[1]["width"] <= 390, boxes  # name and chunks on screen
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    finally:
        context.close()


def test_a_question_sent_while_answering_is_refused_and_stop_ends_the_answer(scripted_page, report_pdf):
    """The model scripted to stream slowly (conftest's scripted_app): a real model may now finish
    before a second question can be sent, so whether one is "still answering" is not left to it."""
    page, state = scripted_page
    upload(page, report_pdf)
    state["replies"].append(" ".join(["The warehouse in Tromsø was closed in March because of flooding [1]."] * 8))
    ask(page, QUESTION)
    chat = page.locator("#chat")
    wait_until(lambda: chat.locator(".bot-row").count() >= 1 and "flooding" in chat.locator(".bot-row").last.inner_text(),
               60, lambda: f"the answer to start streaming; chat: {chat.inner_text()!r}")

    page.locator("#question textarea").fill("Who was the auditor?")
    page.locator("#ask").click()
    page.get_by_text("Still answering your previous question").first.wait_for(timeout=30_000)
    assert page.locator("#question textarea").input_value() == "Who was the auditor?"  # kept to send later
    page.locator("#stop").click()
    wait_until(lambda: "(stopped" in chat.inner_text(), 60, lambda: f"the stopped mark; chat: {chat.inner_text()!r}")
    stopped = chat.locator(".bot-row").last.inner_text()
    time.sleep(3)
    assert chat.locator(".bot-row").last.inner_text() == stopped, "the answer kept growing after Stop"
    assert len(state["settings"]) == 1, "the refused question reached the model"
