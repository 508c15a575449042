"""README's settings table, promises still untested (issue 28): RAG_MAX_LOADED_MODELS other than
2, RAG_EVIDENCE_SENTENCES, RAG_ANSWERABILITY_GATE=false. Each read from the environment as a
user sets it, and its effect checked (fast tier: word-hash embedder, scripted models)."""

from __future__ import annotations

import pytest

import rag.llm.local as local
from fakes import FixedRetriever, NeverCalled, scripted_llm
from rag.answer.chain import UNSURE, QAChain
from rag.llm.local import Loaded, LoadedModels
from rag.schema import SearchHit
from rag.settings import load_settings


class _FakeLlama:
    def __init__(self, path: str):
        self.path, self.closed = path, False

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("size", [1, 3])
def test_rag_max_loaded_models_sets_how_many_stay_loaded(tmp_path, monkeypatch, size):
    from rag.app.workspace import Workspace

    monkeypatch.setattr(local, "LOADED", LoadedModels(size=2))
    monkeypatch.setattr(local, "_load", lambda runtime, path, n_ctx: Loaded(_FakeLlama(path), has_template=True))
    monkeypatch.setenv("RAG_MAX_LOADED_MODELS", str(size))
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    Workspace(load_settings())
    assert local.LOADED.size == size
    paths = [tmp_path / f"m{i}.gguf" for i in range(size + 1)]
    loaded = [local.load_local_model(p, 512) for p in paths]
    assert [k[1].rsplit("/", 1)[-1] for k in local.LOADED.keys()] == [p.name for p in paths[1:]]
    assert loaded[0].model.closed and not any(m.model.closed for m in loaded[1:])


LIGHT = ("The lighthouse lamp is lit at dusk. The lighthouse lamp is put out at dawn. "
         "The lighthouse lamp burns paraffin oil. The lighthouse lamp turns every ten seconds. "
         "The lighthouse lamp was made in Paris.")


def _hits():
    return [SearchHit(1, 0.9, "light.md", None, "c1", LIGHT, {"file_name": "light.md"})]


@pytest.mark.parametrize("n", [1, 2, 4])
def test_rag_evidence_sentences_is_how_many_sentences_the_answer_is_written_from(settings, word_hash_embedder, monkeypatch, n):
    monkeypatch.setenv("RAG_EVIDENCE_SENTENCES", str(n))
    cfg = settings.model_copy(update={"evidence_sentences": load_settings().evidence_sentences})
    assert cfg.evidence_sentences == n
    chain = QAChain(FixedRetriever(_hits()), NeverCalled(), cfg)
    chain.embeddings = word_hash_embedder.embeddings
    evidence = chain.evidence("When is the lighthouse lamp lit?", _hits())
    assert len(evidence) == n


def test_rag_answerability_gate_false_always_asks_the_model(settings, word_hash_embedder, monkeypatch):
    """Gate on: evidence that does not surely answer gets "Not sure" without a model call (the
    model here fails the test if called). RAG_ANSWERABILITY_GATE=false: the model is asked."""
    question = "How much did the lighthouse lamp cost?"  # no amount in the evidence: low confidence
    on = QAChain(FixedRetriever(_hits()), NeverCalled(), settings)
    on.embeddings = word_hash_embedder.embeddings
    gated = on.ask(question)
    assert gated.status == "unsure" and gated.answer.startswith(UNSURE)

    monkeypatch.setenv("RAG_ANSWERABILITY_GATE", "false")
    cfg = settings.model_copy(update={"answerability_gate": load_settings().answerability_gate})
    assert cfg.answerability_gate is False
    llm = scripted_llm("The lighthouse lamp burns paraffin oil [1].")
    off = QAChain(FixedRetriever(_hits()), llm, cfg)
    off.embeddings = word_hash_embedder.embeddings
    asked = off.ask(question)
    assert next(llm.messages, None) is None, "the model was not asked"  # its one reply was used
    assert asked.answer != gated.answer
