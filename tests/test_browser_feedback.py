"""Thumbs and chat export in a real browser (Debian chromium + Playwright; conftest's scripted_app:
the real app, its model scripted so the answer's words are known): a thumb writes the rated turn
(question, answer, citations, settings) to DATA_DIR/feedback.jsonl, and Export Markdown / Export
JSON download files holding the answer and its sources.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from test_browser import QUESTION, ask, upload, wait_for_sources

pytestmark = pytest.mark.slow

REPLY = "The warehouse in Tromsø was closed in March because of flooding [1]."


def feedback_lines(path: Path, n: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) >= n:
            return [json.loads(line) for line in lines]
        if time.monotonic() > deadline:
            pytest.fail(f"{path} has {len(lines)} lines after {timeout:.0f} s, expected {n}")
        time.sleep(0.2)


def answered_page(scripted_page, report_pdf):
    page, state = scripted_page
    upload(page, report_pdf)
    state["replies"].append(REPLY)
    ask(page, QUESTION)
    wait_for_sources(page, "report.pdf, page 2")
    page.locator("#chat .bot-row").last.filter(has_text="flooding").wait_for()
    return page


def test_thumbs_write_the_rated_turn_to_the_data_folder(scripted_page, report_pdf, tmp_path):
    page = answered_page(scripted_page, report_pdf)
    log = tmp_path / "data" / "feedback.jsonl"
    assert not log.exists()
    chat = page.locator("#chat")  # (the thumbs sit beside the message row, not inside it)
    chat.locator(".bot-row").last.hover()
    chat.get_by_role("button", name="Like", exact=True).last.click()
    [up] = feedback_lines(log, 1)
    assert up["rating"] == "up" and up["question"] == QUESTION
    assert "flooding" in up["answer"] and "[1]" in up["answer"]
    cited = up["citations"][0]
    assert cited["n"] == 1 and Path(cited["source"]).name == "report.pdf" and cited["page"] == 2
    assert "Tromsø" in cited["text"] and cited["quote"] and cited["quote"] in cited["text"]
    s = up["settings"]
    assert (s["k"], s["llm"], s["temperature"], s["collection"]) == (4, "local", 0.0, "browser"), s
    assert not any("key" in name.lower() for name in s)  # no API key ever lands in the log
    assert up["session"] and len(up["session"]) == 16  # a hash, not the visitor's token

    chat.get_by_role("button", name="Dislike", exact=True).last.click()
    down = feedback_lines(log, 2)[1]
    assert down["rating"] == "down" and down["question"] == QUESTION and down["id"] != up["id"]
    assert down["citations"] == up["citations"]


def download(page, button: str) -> str:
    page.locator(button).click()
    link = page.locator("#export-file a[download]").first
    link.wait_for(state="visible", timeout=30_000)
    with page.expect_download() as info:
        link.click()
    return Path(info.value.path()).read_text(encoding="utf-8")


def test_export_markdown_and_json_hold_the_answer_and_its_sources(scripted_page, report_pdf):
    page = answered_page(scripted_page, report_pdf)

    markdown = download(page, "#export-md")
    assert f"## 1. {QUESTION}" in markdown and REPLY in markdown, markdown
    sources = markdown.split("**Sources**", 1)[1]
    assert "- [1] report.pdf, page 2: “" in sources and "Tromsø" in sources, markdown

    exported = json.loads(download(page, "#export-json"))
    [turn] = exported["turns"]
    assert turn["question"] == QUESTION and turn["answer"] == REPLY
    cited = turn["citations"][0]
    assert Path(cited["source"]).name == "report.pdf" and cited["page"] == 2 and "Tromsø" in cited["text"]
    assert turn["settings"]["k"] == 4 and turn["settings"]["collection"] == "browser"
