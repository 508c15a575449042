"""The Chroma store: cosine scores, collections, and the embedding-model check."""

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from rag.embeddings import Embedder
from rag.errors import CollectionNotFoundError, EmbeddingMismatchError
from rag.store import open_store


def other_model(embedder, name="other/model", dim=768) -> Embedder:
    """A second embedding model. Fake (LangChain's DeterministicFakeEmbedding) because no second
    real model can be downloaded here; only its name and dimension matter to the check."""
    return Embedder(name, dim, embedder.max_tokens, embedder.tokenizer, DeterministicFakeEmbedding(size=dim))


def add(store, texts):
    docs = [
        Document(page_content=t, metadata={"source": f"s{i}.txt", "doc_id": f"d{i}", "doc_hash": "h", "chunk_count": 1})
        for i, t in enumerate(texts)
    ]
    store.add_chunks(docs, [f"d{i}-0" for i in range(len(texts))])


@pytest.mark.slow
def test_collection_records_model_and_uses_cosine(store, embedder):
    meta = store.collection.metadata
    assert meta["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["embedding_dim"] == embedder.dimension == 384
    assert meta["hnsw:space"] == "cosine"


def test_scores_are_cosine_similarities(store):
    add(store, ["The cat sat on the mat.", "Quarterly revenue of the bank rose."])
    hits = store.search("The cat sat on the mat.", k=2)
    # Not exactly 1.0: the int8 embedder quantizes activations per batch (see test_onnx_embedding).
    assert hits[0].text == "The cat sat on the mat." and hits[0].score == pytest.approx(1.0, abs=0.03)
    assert [h.rank for h in hits] == [1, 2] and hits[1].score < 0.5


@pytest.mark.slow
def test_other_model_is_refused_with_both_names(store, settings, embedder):
    add(store, ["something"])
    with pytest.raises(EmbeddingMismatchError) as err:
        open_store(settings, other_model(embedder))
    message = str(err.value)
    assert "sentence-transformers/all-MiniLM-L6-v2" in message and "other/model" in message
    assert "384" in message and "768" in message and "re-index" in message
    # Same dimension, different model: still refused (results would be silently meaningless).
    with pytest.raises(EmbeddingMismatchError):
        open_store(settings, other_model(embedder, dim=384))
    # The data is untouched.
    assert open_store(settings, embedder).count() == 1


def test_read_only_open_of_a_missing_collection(settings, embedder):
    with pytest.raises(CollectionNotFoundError, match="rag ingest"):
        open_store(settings.model_copy(update={"collection": "nope"}), embedder, create=False)


def test_clear_and_empty_search(store):
    add(store, ["a b c", "d e f"])
    assert store.clear() == 2
    assert store.count() == 0 and store.search("anything") == []


def test_data_survives_reopening(settings, embedder, store):
    add(store, ["persisted text"])
    assert open_store(settings, embedder).search("persisted", k=1)[0].text == "persisted text"
    assert (settings.data_dir / "chroma").is_dir()
