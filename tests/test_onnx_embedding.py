"""The default int8 ONNX embedder against the fp32 sentence-transformers model it was exported from."""

import shutil

import numpy as np
import pytest

from rag.embeddings import make_embedder, packaged_model_path
from rag.errors import ConfigError
from rag.onnx_embedding import int8_model, load_onnx_embeddings
from rag.settings import Settings
from rag.store import open_store

pytestmark = pytest.mark.slow  # the real models: int8 ONNX and fp32 torch

TEXTS = [
    "The lighthouse keeper climbed 212 steps to light the lamp at dusk.",
    "Coronaviruses are enveloped viruses with a positive-sense single-stranded RNA genome.",
    "Quarterly revenue of the bank rose by 4 percent, driven by mortgage lending.",
    "Paris is the capital and most populous city of France.",
    "a",
    "word " * 400,  # longer than the model reads: truncated the same way by both
]


@pytest.fixture(scope="module")
def fp32():
    return make_embedder(Settings(embedding_backend="torch"))


def test_default_backend_is_onnx_int8(embedder):
    assert type(embedder.embeddings).__name__ == "OnnxEmbeddings"
    assert embedder.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dimension == 384 and embedder.max_tokens == 254


def test_int8_vectors_match_fp32(embedder, fp32):
    a = np.array(embedder.embeddings.embed_documents(TEXTS))
    b = np.array(fp32.embeddings.embed_documents(TEXTS))
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    # Each text is nearest to its own fp32 vector: the two can share one collection.
    assert (np.argmax(a @ b.T, axis=1) == np.arange(len(TEXTS))).all()


def test_vectors_depend_on_the_text_not_the_order(embedder):
    """int8 activations are quantized per batch, so a text embedded alone and in a batch differ
    slightly (cosine above 0.97); the same batch always gives the same vectors, in any order."""
    alone = np.array([embedder.embeddings.embed_query(t) for t in TEXTS])
    batch = np.array(embedder.embeddings.embed_documents(TEXTS))
    assert (alone * batch).sum(axis=1).min() > 0.97
    reversed_batch = np.array(embedder.embeddings.embed_documents(TEXTS[::-1]))[::-1]
    assert np.allclose(batch, reversed_batch, atol=1e-6)
    assert np.allclose(alone[0], embedder.embeddings.embed_query(TEXTS[0]), atol=1e-6)
    assert embedder.embeddings.embed_documents([]) == []


def test_store_built_with_torch_opens_with_onnx(settings, embedder, fp32):
    """Same model, two runtimes: the collection records the model, not the runtime."""
    from langchain_core.documents import Document

    store = open_store(settings, fp32)
    docs = [Document(page_content=t, metadata={"source": f"{i}.txt", "doc_id": str(i), "doc_hash": "h", "chunk_count": 1})
            for i, t in enumerate(TEXTS[:4])]
    store.add_chunks(docs, [f"{i}-0" for i in range(4)])
    reopened = open_store(settings, embedder, create=False)
    hits = reopened.search("How many steps did the keeper climb?", k=1)
    assert hits[0].source == "0.txt"


def test_export_is_cached(embedder):
    path = int8_model(packaged_model_path())
    before = path.stat().st_mtime_ns
    assert int8_model(packaged_model_path()) == path and path.stat().st_mtime_ns == before


def test_unsupported_model_folder_names_the_setting(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(packaged_model_path(), folder)
    modules = (folder / "modules.json").read_text().replace("models.Normalize", "models.Dense")
    (folder / "modules.json").write_text(modules)
    with pytest.raises(ConfigError, match="RAG_EMBEDDING_BACKEND=torch"):
        load_onnx_embeddings(folder, batch_size=8)
