"""Feedback (thumbs) as JSONL in the data folder, its export, and a chat exported as Markdown and JSON."""

from __future__ import annotations

import json
import threading

import pytest

from rag.app.cli import main
from rag.app.feedback import FeedbackLog, chat_json, chat_markdown, make_turn

ANSWER = {
    "answer": "The lens is cleaned every Tuesday [1].",
    "refused": False,
    "rewritten_query": None,
    "citations": [{"n": 1, "source": "/srv/docs/handbook.pdf", "page": 2, "chunk_id": "c1",
                   "text": "The lens is cleaned every Tuesday with a chamois cloth.", "score": 0.71,
                   "inferred": False}],
}
SETTINGS = {"k": 4, "llm": "local", "model": "gemma3-270m", "temperature": 0.1, "collection": "default",
            "openai_api_key": "sk-secret"}


def turn():
    return make_turn("When is the lens cleaned?", ANSWER, SETTINGS)


def test_record_appends_one_line_with_question_answer_citations_settings(tmp_path):
    log = FeedbackLog(tmp_path / "data")
    log.record("up", turn(), session="browser-session-token")
    log.record("down", make_turn("Who painted it?", {"answer": "I could not find this.", "refused": True}, SETTINGS))
    lines = (tmp_path / "data" / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["rating"] == "up" and first["question"] == "When is the lens cleaned?"
    assert first["answer"] == ANSWER["answer"]
    assert first["citations"][0]["page"] == 2 and "Tuesday" in first["citations"][0]["text"]
    assert first["settings"]["model"] == "gemma3-270m"
    assert "openai_api_key" not in first["settings"]  # no secrets in the file
    assert first["session"] and "browser-session-token" not in lines[0]  # a hash, not the token
    assert json.loads(lines[1])["refused"] is True
    assert log.summary() == {"up": 1, "down": 1, "total": 2, "path": str(log.path)}


def test_bad_rating_is_refused_and_damaged_lines_are_skipped(tmp_path):
    log = FeedbackLog(tmp_path)
    with pytest.raises(ValueError):
        log.record("meh", turn())
    log.record("up", turn())
    with log.path.open("a") as f:
        f.write('{"rating": "up", "question": "cut off mid-wri')
    assert [e["rating"] for e in log.entries()] == ["up"]


def test_concurrent_records_keep_every_line_whole(tmp_path):
    log = FeedbackLog(tmp_path)
    big = make_turn("q" * 5000, {**ANSWER, "answer": "a" * 15000}, SETTINGS)
    threads = [threading.Thread(target=lambda: [log.record("up", big) for _ in range(10)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(log.entries())) == 40


def test_cli_feedback_summary_and_export(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    log = FeedbackLog(tmp_path / "data")
    log.record("up", turn())
    log.record("down", turn())
    capsys.readouterr()
    assert main(["feedback"]) == 0
    assert "2 answers rated: 1 up, 1 down" in capsys.readouterr().out
    assert main(["feedback", "export"]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["rating"] for e in exported] == ["up", "down"]
    out = tmp_path / "fb.jsonl"
    assert main(["feedback", "export", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2


def test_chat_exports_as_markdown_with_sources_and_as_json():
    turns = [turn(), make_turn("Who painted it?", {"answer": "I could not find this in your documents.",
                                                   "refused": True}, SETTINGS)]
    md = chat_markdown(turns)
    assert "## 1. When is the lens cleaned?" in md
    assert "The lens is cleaned every Tuesday [1]." in md
    assert "- [1] handbook.pdf, page 2: “The lens is cleaned every Tuesday with a chamois cloth.”" in md
    assert "## 2. Who painted it?" in md and "_Not found in the documents._" in md
    data = json.loads(chat_json(turns))
    assert [t["question"] for t in data["turns"]] == ["When is the lens cleaned?", "Who painted it?"]
    assert data["turns"][0]["citations"][0]["source"] == "/srv/docs/handbook.pdf"
    assert "openai_api_key" not in data["turns"][0]["settings"]
