"""`rag ask` and `rag chat` as a user runs them: the real default local model (Gemma 3 270M), the real llama_cpp.server
for RAG_LLM=openai, and the one-line messages a misconfigured backend gives."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import child_env, free_port, rag_cmd
from rag.app.cli import main


@pytest.fixture
def data_dir(tmp_path, monkeypatch, corpus, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_TEMPERATURE", "0")
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    assert main(["ingest", str(corpus), "--json"]) == 0
    capsys.readouterr()
    return tmp_path / "data"


def ask_json(capsys, *argv):
    code = main(["ask", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


@pytest.mark.slow
def test_ask_streams_an_answer_then_sources(data_dir, capsys):
    assert main(["ask", "Why was the warehouse in Tromsø closed?"]) == 0
    out = capsys.readouterr().out
    assert "flood" in out.lower()
    assert "Sources:" in out and "report.pdf, page 2" in out


@pytest.mark.slow
def test_ask_json_has_the_answer_object(data_dir, capsys):
    code, answer, _ = ask_json(capsys, "Why was the warehouse in Tromsø closed?")
    assert code == 0 and answer.keys() == {"answer", "status", "citations", "rewritten_query", "refused"}
    assert not answer["refused"] and answer["rewritten_query"] is None
    c = answer["citations"][0]
    assert {"n", "source", "page", "chunk_id", "text", "score"} <= c.keys()
    assert c["source"].endswith("report.pdf") and c["page"] == 2


@pytest.mark.slow
def test_out_of_corpus_question_is_refused(data_dir, capsys):
    code, answer, _ = ask_json(capsys, "Who won the football World Cup final in 1998?")
    assert code == 0 and answer["refused"] is True and answer["citations"] == []


@pytest.mark.slow
def test_openai_backend_against_a_real_local_server(data_dir, capsys, monkeypatch, openai_server):
    monkeypatch.setenv("RAG_LLM", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server)
    code, answer, err = ask_json(capsys, "Why was the warehouse in Tromsø closed?")
    assert code == 0, err
    assert not answer["refused"] and answer["answer"]
    assert any(c["source"].endswith("report.pdf") for c in answer["citations"]), answer


@pytest.mark.parametrize(
    "env, names",
    [
        ({"RAG_LLM": "openai"}, "OPENAI_API_KEY"),
        ({"RAG_LLM": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:{port}/v1"}, "OPENAI_BASE_URL"),
        ({"RAG_LOCAL_MODEL": "/nowhere/model.gguf"}, "RAG_LOCAL_MODEL"),
        ({"RAG_LLM": "claude"}, "RAG_LLM"),
    ],
)
def test_misconfigured_backend_is_one_clear_line(data_dir, capsys, monkeypatch, env, names):
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(port=free_port()))
    code = main(["ask", "Why was the warehouse in Tromsø closed?"])
    err = capsys.readouterr().err
    assert code == 2 and names in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_chat_in_a_terminal_with_a_follow_up(data_dir):
    first, follow = "Why was the warehouse in Tromsø closed?", "In which month did that happen?"
    proc = subprocess.run(
        [*rag_cmd(), "chat"],
        input=f"{first}\n{follow}\n",
        capture_output=True,
        text=True,
        timeout=600,
        env=child_env(RAG_DATA_DIR=os.environ["RAG_DATA_DIR"], RAG_TEMPERATURE="0"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("bot>") == 2
    assert proc.stdout.count("(searched for:") == 1  # the first question is searched as asked
    searched = proc.stdout.split("(searched for:")[1].split(")\n")[0].strip()
    # With the default model (temperature 0) this is exactly the fallback, previous question + this
    # one: Gemma's own rewrite is rejected (test_chain's strict xfail says so, and fails if that
    # changes; then this line changes with it). Not just a word of the fallback: the CLI passed the
    # history and searched what the chain chose.
    assert searched == f"{first} {follow}", searched
    assert "Traceback" not in proc.stderr
