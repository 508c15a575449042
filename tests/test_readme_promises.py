"""Promises of README.md and docs/ that had no test of their own: settings read from RAG_* variables actually
change what the code does, an unchanged file is not even parsed, the Sources panel's notes, and
`rag chat` carrying on after a backend error.

Real Chroma in tmp_path, the real packaged embedder, real generated files; scripted chat models
(tests/fakes.py) only where the exact words matter.
"""

from __future__ import annotations

import io
import sys

import pytest

import docgen
from fakes import failing_once_llm, scripted_llm
from rag.errors import LLMError
from rag.retrieval import Retriever
from rag.settings import load_settings


def write(folder, files: dict[str, str]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


COPIES = {f"copy{i}.txt": f"The lighthouse lens is cleaned every Monday with a soft cloth (copy {i})." for i in range(5)}
OTHERS = {
    "water.txt": "Clean the glass prisms with distilled water and alcohol, never with soap.",
    "lamp.txt": "The lamp of the lighthouse is replaced every spring by the keeper.",
    "code.txt": "Spare part QZ-7781 is stored in the north shed.",
}
LENS = "How is the lighthouse lens cleaned?"


@pytest.fixture
def lens(tmp_path, ingestor):
    assert ingestor.ingest([write(tmp_path / "lens", {**COPIES, **OTHERS})]).ok


# ------------------------------------------------------------------ RAG_HYBRID, RAG_MMR

@pytest.mark.parametrize("value, hybrid", [("true", True), ("false", False), ("0", False)])
def test_rag_hybrid_decides_whether_keyword_ranks_are_fused(lens, store, monkeypatch, value, hybrid):
    monkeypatch.setenv("RAG_HYBRID", value)
    settings = load_settings(collection=store.name)
    assert settings.hybrid is hybrid
    hits = Retriever(store, settings).retrieve("QZ-7781", k=3)
    assert any("bm25_rank" in h.metadata for h in hits) is hybrid
    if hybrid:  # the exact code is found by its keyword, first
        assert "QZ-7781" in hits[0].text and hits[0].metadata["bm25_rank"] == 1


@pytest.mark.parametrize("value", ["true", "false"])
def test_rag_mmr_keeps_near_duplicates_out_of_the_top_k(lens, store, monkeypatch, value):
    monkeypatch.setenv("RAG_MMR", value)
    monkeypatch.setenv("RAG_HYBRID", "false")
    settings = load_settings(collection=store.name)
    hits = Retriever(store, settings).retrieve(LENS, k=3)
    copies = sum("(copy" in h.text for h in hits)
    assert "(copy" in hits[0].text
    assert copies == (1 if value == "true" else 3), [h.text for h in hits]


# ------------------------------------------------------------------ RAG_EMBEDDING_BATCH_SIZE

@pytest.mark.real_embedder
@pytest.mark.parametrize("batch", [3, 32])
def test_rag_embedding_batch_size_is_the_batch_the_model_runs(monkeypatch, batch):
    """The model encodes ceil(n / batch) batches of at most `batch` texts, and the vectors are the
    same whatever the batch (up to int8 rounding of per-batch activations)."""
    import numpy as np

    from rag.embeddings import make_embedder

    monkeypatch.setenv("RAG_EMBEDDING_BATCH_SIZE", str(batch))
    settings = load_settings()
    assert settings.embedding_batch_size == batch
    embeddings = make_embedder(settings).embeddings
    sizes: list[int] = []
    real = type(embeddings)._encode

    def counting(self, texts):
        sizes.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(type(embeddings), "_encode", counting)
    texts = [f"Sentence {i} about the harbour crane and its {i} tonnes." for i in range(10)]
    vectors = np.array(embeddings.embed_documents(texts))
    assert sizes == [min(batch, 10 - start) for start in range(0, 10, batch)]
    one_by_one = np.array([embeddings.embed_query(t) for t in texts])
    assert np.min(np.sum(vectors * one_by_one, axis=1)) > 0.99


# ------------------------------------------------------------------ an unchanged file is not even parsed

def test_an_unchanged_file_is_not_even_parsed(ingestor, corpus, monkeypatch):
    assert ingestor.ingest([corpus]).ok
    import ingest.formats
    import ingest.pipeline
    from ingest.chunking import Chunker

    def must_not_run(*args, **kwargs):
        raise AssertionError("an unchanged file was parsed")

    for module in (ingest.pipeline, ingest.formats):
        for name in dir(module):
            if name.startswith("load") and callable(getattr(module, name)):
                monkeypatch.setattr(module, name, must_not_run)
    monkeypatch.setattr(Chunker, "chunk", must_not_run)
    again = ingestor.ingest([corpus])
    assert [r.status for r in again.files] == ["unchanged"] * 7, again.files

    # ...and a changed one is (the stubs are live: this one fails through them)
    docgen.make_text(corpus / "notes.md", "# Notes\n\nPuffins nest on the western cliffs now.\n")
    changed = {r.path.rsplit("/", 1)[-1]: r for r in ingestor.ingest([corpus]).files}
    assert changed["notes.md"].status == "failed" and "parsed" in changed["notes.md"].error


# ------------------------------------------------------------------ the Sources panel's notes

@pytest.fixture
def workspace(settings, corpus, ingestor):
    from rag.app.workspace import Workspace

    assert ingestor.ingest([corpus]).ok
    return Workspace(settings)


def turn_with(workspace, settings, monkeypatch, replies, question, history=()):
    """One chat turn as the page runs it, the chain's model replaced by scripted replies."""
    from rag.answer.chain import QAChain
    from rag.app.web import chat_turn

    real = workspace.chain

    def chain(session, chosen, overrides=None):
        made = real(session, chosen, {**(overrides or {}), "llm": "openai", "openai_base_url": "http://127.0.0.1:9/v1"})
        return QAChain(made.retriever, scripted_llm(*replies), made.settings.model_copy(update={"llm": "local"}))

    monkeypatch.setattr(workspace, "chain", chain)
    *_, (chat, new_history, answer) = chat_turn(workspace, "s", question, [], list(history), settings.collection, {})
    return chat[-1]["content"], answer, panel(question, answer)


def panel(question, answer) -> str:
    """The Sources panel as the page renders it for this one answer (Handlers._turn, render_panel)."""
    from rag.app.feedback import make_turn
    from rag.app.sources_view import passages_of, render_panel

    turn = make_turn(question, answer.to_json(), {})
    turn["passages"] = passages_of(answer)
    return render_panel([turn])


def test_sources_panel_shows_the_rewritten_question(workspace, settings, monkeypatch):
    rewrite = "In which month was the Tromsø warehouse closed?"
    _, answer, sources = turn_with(workspace, settings, monkeypatch, [rewrite, "In March [1]."],
                                   "In which month did that happen?",
                                   history=[("Why was the warehouse in Tromsø closed?", "Flooding [1].")])
    assert answer.rewritten_query == rewrite
    assert "report.pdf, page 2" in sources


@pytest.mark.real_embedder
def test_an_unsupported_sentence_is_dropped_not_shown_as_cited(workspace, settings, monkeypatch):
    """Evidence first: a sentence no passage backs is removed from the answer (before, it was kept
    with a "weak support" warning); what stays cites the passage that says it."""
    reply = "The warehouse closed because of flooding [1]. Puffins manage the warehouse accounts [2]."
    answer, data, sources = turn_with(workspace, settings, monkeypatch, [reply], "Why was the warehouse in Tromsø closed?")
    assert "flooding" in answer and "Puffins" not in answer, answer
    assert [(c.n, c.source.rsplit("/", 1)[-1], c.page) for c in data.citations] == [(1, "report.pdf", 2)], data.citations
    assert sources.count('class="src cited"') == 1 and "report.pdf, page 2" in sources, sources
    assert data.rewritten_query is None  # no history, nothing rewritten


def test_an_answer_without_markers_cites_the_passage_it_matches(workspace, settings, monkeypatch):
    reply = "The warehouse in Tromsø was closed in March because of flooding."  # no marker at all
    answer, data, sources = turn_with(workspace, settings, monkeypatch, [reply], "Why was the warehouse in Tromsø closed?")
    assert answer.replace("\\", "").endswith("[1].")  # the chat shows the marker escaped (inert Markdown)
    assert "report.pdf, page 2" in sources and all(c.inferred for c in data.citations) and data.citations


def test_sources_panel_when_the_draft_does_not_check_out(workspace, settings, monkeypatch):
    """The model's reply matches nothing in the passages, which do answer the question: the answer
    is the passage's own sentence, quoted, and the sources show the quote."""
    answer, _, sources = turn_with(workspace, settings, monkeypatch, ["Nobody knows."], "Why was the warehouse in Tromsø closed?")
    assert answer.startswith("Your documents say: “The warehouse in Tromsø was closed in March") and "Nobody" not in answer
    assert "<mark>The warehouse in Tromsø was closed" in sources


# ------------------------------------------------------------------ rag chat after a backend error

def test_rag_chat_carries_on_after_a_backend_error(tmp_path, corpus, monkeypatch, capsys):
    """The first question's backend call fails; the conversation goes on, and the second answers."""
    import rag.answer.chain
    from rag.app.cli import main

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    assert main(["ingest", str(corpus), "--json"]) == 0
    real_build = rag.answer.build

    def build(settings):
        made = real_build(settings.model_copy(update={"llm": "openai", "openai_base_url": "http://127.0.0.1:9/v1"}))
        llm = failing_once_llm(LLMError("cannot reach the LLM server at OPENAI_BASE_URL=http://127.0.0.1:9/v1"),
                               "The warehouse was closed because of flooding [1].")
        return rag.answer.chain.QAChain(made.retriever, llm, settings)

    monkeypatch.setattr(rag.answer, "build", build)
    monkeypatch.setattr(sys, "stdin", io.StringIO("When does the night ferry leave?\nWhy was the warehouse in Tromsø closed?\n"))
    capsys.readouterr()
    assert main(["chat"]) == 0
    out, err = capsys.readouterr()
    assert out.count("bot>") == 2
    assert err.count("error: cannot reach the LLM server") == 1 and "Traceback" not in err
    second = out.split("bot>")[2]
    assert "flooding [1]" in second and "report.pdf, page 2" in second
    assert "(searched for:" not in second  # the failed turn left no history to rewrite against


# ------------------------------------------------------------------ slow: real model, real subprocess

@pytest.mark.slow
def test_rag_local_model_set_to_a_gguf_path(tmp_path, monkeypatch):
    """Any GGUF file by path: here the packaged SmolLM2's file, linked under a name of our own."""
    from rag.llm import describe_llm, make_llm, resolve_local_model

    gguf = tmp_path / "models" / "my-model.gguf"
    gguf.parent.mkdir()
    gguf.symlink_to(resolve_local_model("smollm2"))
    monkeypatch.setenv("RAG_LOCAL_MODEL", str(gguf))
    monkeypatch.setenv("RAG_MAX_ANSWER_TOKENS", "16")
    settings = load_settings()
    assert "my-model" in describe_llm(settings)
    llm = make_llm(settings)
    reply = llm.invoke("Say hello.").content
    assert isinstance(reply, str) and reply.strip()
    assert "my-model" in llm.model_path


@pytest.mark.slow
def test_rag_chat_subprocess_goes_on_after_each_backend_error(tmp_path, corpus):
    """The real command with a real backend that cannot be reached: every question gets a one-line
    error, the prompt comes back, and an empty line ends the session with exit 0."""
    import subprocess

    from conftest import child_env, free_port, rag_cmd

    env = child_env(RAG_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run([*rag_cmd(), "ingest", str(corpus)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env.update(RAG_LLM="openai", OPENAI_BASE_URL=url)
    proc = subprocess.run(
        [*rag_cmd(), "chat"],
        input="Why was the warehouse in Tromsø closed?\nWhen does the night ferry to Bodø leave?\n\n",
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("bot>") == 2 and proc.stdout.count("you>") == 3
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("OPENAI_BASE_URL" in e for e in errors), proc.stderr
    assert "Traceback" not in proc.stderr
