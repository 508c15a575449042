"""The OpenAI-compatible /v1 API, driven by the real `openai` Python client against a real server.

Fast tier: the app is started in-process (rag.app.web.start, the path `rag serve` takes) on a free
port, with the word-hash embedder and a scripted chat model (exact words, so the citations are
known). Slow tier: a real `rag serve` process with the packaged embedder and Gemma 3 270M.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import openai
import pytest

from conftest import free_port
from docgen import make_text
from fakes import scripted_llm
from rag.app.openai_api import ApiError, check_auth, split_messages
from rag.settings import Settings

FACT = "The lens of the Skarvøy lighthouse is cleaned every Tuesday with a chamois cloth."
QUESTION = "When is the lens of the Skarvøy lighthouse cleaned?"
REPLY = "The lens is cleaned every Tuesday [1]."


# --- pure helpers ------------------------------------------------------------------------------
def test_split_messages_pairs_history_and_takes_last_user_message():
    question, history = split_messages([
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "Who keeps the light?"},
        {"role": "assistant", "content": "Ola does [1]."},
        {"role": "user", "content": [{"type": "text", "text": "How often does he clean it?"}]},
    ])
    assert question == "How often does he clean it?"
    assert history == [("Who keeps the light?", "Ola does [1].")]


@pytest.mark.parametrize("messages", [[], None, [{"role": "assistant", "content": "hi"}],
                                      [{"role": "user", "content": "  "}], ["text"]])
def test_split_messages_refuses_requests_without_a_question(messages):
    with pytest.raises(ApiError) as err:
        split_messages(messages)
    assert err.value.status == 400


def test_check_auth_accepts_bearer_and_basic_only_with_the_login():
    login = ("alice", "s3cret")
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert check_auth(None, None)
    assert check_auth("Bearer alice:s3cret", login)
    assert check_auth(basic, login)
    for bad in (None, "", "Bearer alice:wrong", "Bearer s3cret", "Basic !!!", "Token alice:s3cret",
                "Basic " + base64.b64encode(b"alice:wrong").decode()):
        assert not check_auth(bad, login), bad


# --- against a running server ------------------------------------------------------------------
def _serve(tmp_path, settings: Settings, replies: list[str], auth: str = ""):
    from ingest.pipeline import Ingestor
    from rag.app.web import build_app, start

    doc = make_text(tmp_path / "docs" / "handbook.md", f"# Lighthouse handbook\n\n{FACT}\n")
    demo = build_app(settings)
    ws = demo.workspace
    assert Ingestor(ws.store(settings.collection), settings).ingest_file(doc).status == "added"
    script = scripted_llm(*replies)
    ws.llm = lambda settings: script
    port = free_port()
    start(demo, host="127.0.0.1", port=port, auth=auth)
    return demo, f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def private_server(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", collection="handbook", temperature=0.0)
    demo, url = _serve(tmp_path, settings, [REPLY] * 4)
    try:
        yield url
    finally:
        demo.close()


def test_models_lists_one_model_per_collection(private_server):
    client = openai.OpenAI(base_url=private_server, api_key="unused")
    assert [m.id for m in client.models.list()] == ["groundwork-rag"]


def test_completion_answers_from_the_documents_with_citations(private_server):
    client = openai.OpenAI(base_url=private_server, api_key="unused")
    response = client.chat.completions.create(
        model="groundwork-rag", messages=[{"role": "user", "content": QUESTION}])
    assert response.choices[0].message.content == REPLY
    assert response.choices[0].finish_reason == "stop"
    extra = response.model_extra
    assert extra["refused"] is False
    [citation] = extra["citations"]
    assert citation["n"] == 1 and citation["source"].endswith("handbook.md")
    assert "Tuesday" in citation["text"]


def test_streaming_sends_the_answer_in_pieces_then_citations(private_server):
    client = openai.OpenAI(base_url=private_server, api_key="unused")
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini",  # a client's default model name means the default collection
        messages=[{"role": "user", "content": QUESTION}], stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) > 1, pieces  # streamed, not one blob
    assert "".join(pieces).strip() == REPLY
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["citations"][0]["n"] == 1
    assert last.model_extra["answer"] == REPLY


def test_bad_requests_are_4xx_errors_the_client_raises(private_server):
    client = openai.OpenAI(base_url=private_server, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="groundwork-rag", messages=[{"role": "assistant", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="groundwork-rag", messages=[], stream=True)
    with pytest.raises(openai.NotFoundError, match="no collection"):
        client.chat.completions.create(model="groundwork-rag:nope", messages=[{"role": "user", "content": QUESTION}])


def test_auth_is_required_when_set(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", collection="handbook", temperature=0.0)
    demo, url = _serve(tmp_path, settings, [REPLY] * 2, auth="alice:s3cret")
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
        request = urllib.request.Request(url + "/models")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 401
        client = openai.OpenAI(base_url=url, api_key="alice:s3cret", max_retries=0)
        assert [m.id for m in client.models.list()] == ["groundwork-rag"]
        request.add_header("Authorization", "Basic " + base64.b64encode(b"alice:s3cret").decode())
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.load(resp)["data"][0]["id"] == "groundwork-rag"
    finally:
        demo.close()


def test_public_mode_ignores_the_callers_model_and_settings(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", collection="handbook", temperature=0.0, public=True)
    demo, url = _serve(tmp_path, settings, [REPLY] * 2)
    try:
        ws = demo.workspace
        ws.store("private-notes")  # another collection exists on the server
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == ["groundwork-rag"]
        response = client.chat.completions.create(
            model="groundwork-rag:private-notes", temperature=1.5,
            messages=[{"role": "user", "content": QUESTION}])
        assert response.model == "groundwork-rag"
        assert response.model_extra["citations"][0]["source"] == "handbook.md"  # a name, not the server path
    finally:
        demo.close()


@pytest.mark.slow
def test_real_rag_serve_streams_an_answer_to_the_openai_client(tmp_path):
    """`rag serve` as a user runs it, the packaged embedder and Gemma 3 270M answering."""
    from test_web import Server

    from rag.app.cli import main

    doc = make_text(tmp_path / "docs" / "handbook.md", f"# Lighthouse handbook\n\n{FACT}\n")
    env = {"RAG_DATA_DIR": str(tmp_path / "serve-data"), "RAG_TEMPERATURE": "0", "RAG_MAX_ANSWER_TOKENS": "48"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        assert main(["ingest", str(doc)]) == 0
    # Server passes no RAG_* variable through; the served process reads these from .env in its folder
    (tmp_path / ".env").write_text("RAG_TEMPERATURE=0\nRAG_MAX_ANSWER_TOKENS=48\n")
    server = Server(tmp_path)
    try:
        url = server.wait_for(r"OpenAI-compatible API at (http://\S+)", timeout=240).group(1)
        client = openai.OpenAI(base_url=url, api_key="unused", timeout=300, max_retries=0)
        chunks = list(client.chat.completions.create(
            model="groundwork-rag", messages=[{"role": "user", "content": QUESTION}], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        last = chunks[-1]
        print(f"\nreal answer over /v1: {text!r}; citations {[c['n'] for c in last.model_extra['citations']]}")
        assert text.strip(), "no answer text streamed"
        assert last.choices[0].finish_reason == "stop"
        assert last.model_extra["refused"] is False
        assert "Traceback" not in server.output
    finally:
        server.stop()
