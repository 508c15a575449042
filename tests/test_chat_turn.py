"""A chat turn as the browser shows it: refusals, and backend errors as readable chat messages."""

from __future__ import annotations

import pytest

from conftest import free_port
from rag.app.web import chat_turn
from rag.app.workspace import Workspace


@pytest.fixture
def workspace(settings, corpus, ingestor, monkeypatch):
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    assert ingestor.ingest([corpus]).ok
    return Workspace(settings)


def last(turns):
    *_, final = list(turns)
    return final


@pytest.mark.slow
def test_refusal_is_shown_as_such(workspace, settings):
    chat, history, answer = last(chat_turn(workspace, "s", "Who won the 1998 World Cup final?", [], [], settings.collection, {}))
    assert chat[-1] == {"role": "assistant", "content": "I could not find this in your documents."}
    assert answer.refused
    assert history == [("Who won the 1998 World Cup final?", "I could not find this in your documents.")]


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"llm": "openai"}, "OPENAI_API_KEY"),
        ({"llm": "openai", "openai_base_url": "http://127.0.0.1:{port}/v1"}, "OPENAI_BASE_URL"),
        ({"local_model": "/nowhere/model.gguf"}, "RAG_LOCAL_MODEL"),
    ],
)
def test_backend_error_is_a_readable_chat_message(workspace, settings, overrides, name):
    overrides = {k: v.format(port=free_port()) for k, v in overrides.items()}
    turns = list(chat_turn(workspace, "s", "Why was the warehouse in Tromsø closed?", [], [], settings.collection, overrides))
    chat, history, answer = turns[-1]
    message = chat[-1]["content"]
    assert chat[-1]["role"] == "assistant" and message.startswith("⚠️") and name in message
    assert "Traceback" not in message and history == [] and answer is None


def test_empty_message_changes_nothing(workspace, settings):
    assert list(chat_turn(workspace, "s", "   ", [], [], settings.collection, {})) == [([], [], None)]


def test_preload_fills_the_shared_collection(settings, corpus, capsys):
    from rag.app.web import build_app

    demo = build_app(settings.model_copy(update={"preload": f"{corpus / 'notes.md'}, {corpus / 'sub'}", "public": True}))
    assert "preloaded 3 files" in capsys.readouterr().out
    sources = sorted(d.source.rsplit("/", 1)[-1] for d, mine in demo.workspace.documents("visitor", None))
    assert sources == ["notes.md", "page.html", "prices.xlsx"]
