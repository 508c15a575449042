"""Retrieval: hybrid (dense + BM25, RRF) ranking, real cosine scores, MMR, and the keyword index."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.pipeline import document_id
from rag.context import indexed_text
from rag.retrieval import Retriever, tokenize
from rag.store import open_store

CODE = "XK-4471-B"
CODE_TEXT = f"Winter supplies: {CODE} is stored in the north shed next to the firewood."


def distractors() -> list[str]:
    """Texts about spare parts: semantically much closer to a 'which part is X' question than
    the one text that actually contains the code."""
    pumps = [f"Replace the pump seal with part PS-{1000 + i} when it starts leaking." for i in range(28)]
    filters = [f"The spare filter cartridge for the water pump is item FC-{i}, ordered from the depot." for i in range(28)]
    misc = ["Puffins nest on the eastern cliffs.", "The night ferry leaves at 23:40 from pier 4.",
            "Sales rose in March.", "Caution: the generator room floor is slippery."]
    return pumps + filters + misc


def write(folder, texts: dict[str, str]):
    folder.mkdir(exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def parts(tmp_path, ingestor):
    """61 one-chunk documents: 60 distractors and the one holding CODE."""
    texts = {f"d{i:02d}.txt": t for i, t in enumerate(distractors())}
    texts["supplies.txt"] = CODE_TEXT
    folder = write(tmp_path / "parts", texts)
    assert ingestor.ingest([folder]).ok
    return folder


@pytest.fixture
def retriever(store, settings):
    return Retriever(store, settings)


def cosine(embedder, query: str, text: str, metadata: dict | None = None, vector=None) -> float:
    """Cosine of the query and a chunk's indexed text (title and heading in front, rag.context),
    or of the query and `vector`, the chunk's stored embedding: chunks of many files are embedded
    together (ingest/batching.py) and int8 activations are quantized per batch, so a text
    embedded alone differs from its stored vector by up to ~0.01 in cosine."""
    q = np.asarray(embedder.embeddings.embed_query(query))
    if vector is None:
        vector = embedder.embeddings.embed_documents([indexed_text(text, metadata or {})])[0]
    d = np.asarray(vector)
    return float(q @ d / (np.linalg.norm(q) * np.linalg.norm(d)))


def test_tokenize_lowercases_keeps_numbers_and_drops_stopwords():
    assert tokenize("What is the price of XK-4471-B in Tromsø?") == ["price", "xk", "4471", "b", "tromsø"]


def test_empty_collection_returns_nothing(retriever):
    assert retriever.retrieve("anything at all") == []
    assert retriever.retrieve("anything at all", hybrid=False, mmr=True) == []


@pytest.mark.slow
def test_keyword_only_match_ranks_first_with_hybrid(parts, retriever):
    # (Not "which replacement part": "part" is in 28 distractors, all tied in BM25, and RRF may
    # then rank a tied distractor that is also dense #1 above the code's chunk.)
    query = f"Which replacement is {CODE}?"
    # k=16 asks for 64 dense candidates: every chunk, so each gets a dense rank and a fused score.
    dense = retriever.retrieve(query, k=16, hybrid=False)
    hybrid = retriever.retrieve(query, k=16, hybrid=True)
    assert dense[0].text != CODE_TEXT  # the spare-part distractors are closer in embedding space
    assert hybrid[0].text == CODE_TEXT
    assert hybrid[0].metadata["bm25_rank"] == 1 and hybrid[0].metadata["dense_rank"] > 1


@pytest.mark.slow
def test_bm25_only_hits_are_returned_with_their_cosine(parts, retriever, embedder, store):
    query = f"Which replacement part is {CODE}?"
    # k=2 asks for 20 dense candidates, and the code's chunk is not among them.
    assert CODE_TEXT not in [h.text for h in retriever.retrieve(query, k=20, hybrid=False)]
    hits = retriever.retrieve(query, k=2)
    found = next(h for h in hits if h.text == CODE_TEXT)
    assert "dense_rank" not in found.metadata and found.metadata["bm25_rank"] == 1
    vector = store.get_by_ids([found.chunk_id])[0].embedding
    assert found.score == pytest.approx(cosine(embedder, query, CODE_TEXT, vector=vector), abs=1e-3)


@pytest.mark.slow
def test_every_score_is_the_real_cosine(parts, retriever, embedder, store):
    query = f"Which replacement part is {CODE}?"
    for kwargs in ({"hybrid": True}, {"hybrid": False}, {"hybrid": True, "mmr": True}):
        hits = retriever.retrieve(query, k=6, **kwargs)
        assert hits
        for hit in hits:
            vector = store.get_by_ids([hit.chunk_id])[0].embedding
            assert hit.score == pytest.approx(cosine(embedder, query, hit.text, vector=vector), abs=1e-3)
    # ...including hits that only BM25 found.
    assert any("dense_rank" not in h.metadata for h in retriever.retrieve(query, k=6))


def test_ranks_k_and_metadata(parts, retriever, settings):
    for k in (1, 3, 7):
        hits = retriever.retrieve("water pump filter", k=k)
        assert [h.rank for h in hits] == list(range(1, k + 1))
        assert len({h.chunk_id for h in hits}) == k
        for hit in hits:
            assert hit.source.endswith(".txt") and hit.metadata["doc_id"]
            assert "dense_rank" in hit.metadata or "bm25_rank" in hit.metadata
            expected = sum(1 / (60 + hit.metadata[r]) for r in ("dense_rank", "bm25_rank") if r in hit.metadata)
            assert hit.metadata["rrf"] == pytest.approx(expected)
        assert [h.metadata["rrf"] for h in hits] == sorted((h.metadata["rrf"] for h in hits), reverse=True)
    # More than the collection holds: everything, once.
    assert len(retriever.retrieve("water pump filter", k=500)) == 61
    # Defaults come from the settings.
    assert len(Retriever(retriever.store, settings.model_copy(update={"k": 2})).retrieve("pump")) == 2


@pytest.mark.slow
def test_dense_only_is_plain_cosine_ranking(parts, retriever, store):
    hits = retriever.retrieve("Where do puffins nest?", k=5, hybrid=False)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all("bm25_rank" not in h.metadata for h in hits)
    assert [h.metadata["dense_rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert [h.chunk_id for h in hits] == [h.chunk_id for h in store.search("Where do puffins nest?", k=5)]
    assert hits[0].text == "Puffins nest on the eastern cliffs."


def test_surname_in_a_pdf_is_found(corpus, ingestor, retriever):
    assert ingestor.ingest([corpus]).ok
    hit = retriever.retrieve("Lindqvist", k=1)[0]
    assert "Karin Lindqvist" in hit.text and hit.source.endswith("report.pdf") and hit.page == 3


@pytest.mark.parametrize("hybrid", [False, True])
def test_mmr_keeps_near_duplicates_from_filling_top_k(tmp_path, ingestor, retriever, hybrid):
    copies = {f"copy{i}.txt": f"The lighthouse lens is cleaned every Monday with a soft cloth (copy {i})." for i in range(5)}
    others = {
        "water.txt": "Clean the glass prisms with distilled water and alcohol, never with soap.",
        "lamp.txt": "The lamp of the lighthouse is replaced every spring by the keeper.",
        "gulls.txt": "Gulls foul the gallery rail, so the keeper scrubs it weekly.",
    }
    assert ingestor.ingest([write(tmp_path / "lens", {**copies, **others})]).ok
    query = "How is the lighthouse lens cleaned?"
    plain = retriever.retrieve(query, k=3, hybrid=hybrid, mmr=False)
    assert all("(copy" in h.text for h in plain)  # without MMR the duplicates fill the top 3
    diverse = retriever.retrieve(query, k=3, hybrid=hybrid, mmr=True)
    assert "(copy" in diverse[0].text  # the most relevant still comes first
    # Dense + MMR keeps one copy. With hybrid, MMR reorders only the dense list before fusion;
    # BM25 scores the five copies equally, and which of them it lists first depends on their ids
    # (paths of this test's temp folder), so copies can still fill the fused top 3. What MMR must
    # change there is the dense ranking fed to the fusion: a different document comes second in
    # it instead of sixth, behind every copy.
    if not hybrid:
        assert sum("(copy" in h.text for h in diverse) == 1
    every_plain = retriever.retrieve(query, k=8, hybrid=hybrid, mmr=False)
    every_diverse = retriever.retrieve(query, k=8, hybrid=hybrid, mmr=True)

    def best_other(hits):
        return min((h for h in hits if "(copy" not in h.text), key=lambda h: h.metadata["dense_rank"])

    assert best_other(every_plain).metadata["dense_rank"] == 6
    assert best_other(every_diverse).metadata["dense_rank"] == 2  # the rank the fusion was given


def test_keyword_index_follows_add_update_and_delete(tmp_path, parts, ingestor, store, retriever):
    code_file = parts / "supplies.txt"

    # Update: the old text is gone, the new one is found through BM25.
    code_file.write_text("Winter supplies: QZ-9036 is stored in the south shed.", encoding="utf-8")
    assert ingestor.ingest([code_file]).files[0].status == "updated"
    assert all(CODE not in h.text for h in retriever.retrieve(CODE, k=10))
    hit = retriever.retrieve("QZ-9036", k=1)[0]
    assert "QZ-9036" in hit.text and hit.metadata["bm25_rank"] == 1

    # Delete: never returned again.
    assert store.delete_document(document_id(code_file)) == 1
    assert all("QZ-9036" not in h.text for h in retriever.retrieve("QZ-9036 shed", k=10))

    # Add: a new document is found.
    new = write(tmp_path / "more", {"radio.txt": "The backup radio code is MV-7777-C."})
    assert ingestor.ingest([new]).ok
    hit = retriever.retrieve("MV-7777-C", k=1)[0]
    assert hit.text == "The backup radio code is MV-7777-C." and hit.metadata["bm25_rank"] == 1
    assert store.keyword_index().ids() == set(store.collection.get(include=[])["ids"])
    assert store.keyword.count() == store.count() == 61


# --- the heading ranking (rag.retrieval's module docstring) ----------------------------------

FAQ_MD = """# Anchor winch questions

## Why does the winch hum after it is switched off?

A worn bearing is the usual cause. Order kit KT-1001 from the depot.

## Why does the winch leak at the base?

A cracked seal lets the grease out. Order kit KT-1002 from the depot.

## Why does the winch click when it turns?

Salt crust on the contacts. Order kit KT-1003 from the depot.
"""


@pytest.fixture
def faq(tmp_path, ingestor):
    folder = write(tmp_path / "faq", {"winch.md": FAQ_MD})
    assert ingestor.ingest([folder]).ok
    return folder


def labels_of(store) -> set[str]:
    from rag.context import heading_label

    return {heading_label(m) for m in store.collection.get(include=["metadatas"])["metadatas"]} - {""}


def test_each_section_heading_is_embedded_once_at_ingest(faq, store, embedder):
    labels = labels_of(store)
    # The heading path without the document title, one per section.
    assert "Anchor winch questions > Why does the winch leak at the base?" in labels and len(labels) == 3
    stored = store.keyword.heading_vectors(labels)
    assert stored.keys() == labels
    label = "Anchor winch questions > Why does the winch click when it turns?"
    expected = np.asarray(embedder.embeddings.embed_documents([label])[0], dtype=np.float32)
    assert np.frombuffer(stored[label], dtype=np.float32) == pytest.approx(expected, abs=1e-2)


def test_headed_chunks_are_ranked_by_their_heading_and_fused(faq, retriever, embedder, store):
    query = "winch keeps humming once switched off"
    hits = retriever.retrieve(query, k=3)
    vectors = store.heading_vectors(h.metadata["heading"] for h in hits)
    by_label = {h.chunk_id: cosine(embedder, query, "", vector=vectors[h.metadata["heading"]]) for h in hits}
    # The heading ranking is the order of the headings' cosines (the chunks' own break ties).
    order = sorted(hits, key=lambda h: (-by_label[h.chunk_id], -h.score))
    assert [h.metadata["heading_rank"] for h in order] == [1, 2, 3]
    for hit in hits:
        expected = sum(1 / (60 + hit.metadata[r]) for r in ("dense_rank", "bm25_rank", "heading_rank") if r in hit.metadata)
        assert hit.metadata["rrf"] == pytest.approx(expected)
    assert "KT-1001" in hits[0].text
    # Dense only: no fusion, no heading ranking.
    assert all("heading_rank" not in h.metadata for h in retriever.retrieve(query, k=3, hybrid=False))
    # The ablation switch.
    retriever.heading_ranking = False
    assert all("heading_rank" not in h.metadata for h in retriever.retrieve(query, k=3))


def test_no_heading_ranking_where_no_candidate_has_a_heading(parts, retriever):
    # Plain text: the ranking would only copy the dense one, so retrieval is exactly dense + BM25.
    for hit in retriever.retrieve("water pump filter", k=10):
        assert "heading_rank" not in hit.metadata
        expected = sum(1 / (60 + hit.metadata[r]) for r in ("dense_rank", "bm25_rank") if r in hit.metadata)
        assert hit.metadata["rrf"] == pytest.approx(expected)


def test_a_chunk_under_no_heading_is_ranked_by_its_own_text(faq, tmp_path, ingestor, retriever):
    # Mixed with headed sections, a plain text chunk is not left out of the heading ranking (which
    # would give every headed chunk a vote it lacks): its own text is its label.
    assert ingestor.ingest([write(tmp_path / "plain", {"note.txt": "The winch motor hums quietly when idle."})]).ok
    hits = retriever.retrieve("winch motor hums quietly idle", k=4)
    plain = next(h for h in hits if h.source.endswith("note.txt"))
    assert plain.metadata["heading_rank"] == 1 and hits[0] is plain


def test_heading_vectors_follow_deletes_and_missing_ones_are_made_at_search(faq, store, retriever):
    labels = labels_of(store)
    # Missing (a file from before heading vectors, another process's write): embedded at search.
    with store.keyword._db:
        store.keyword._db.execute("DELETE FROM heading_vector")
    assert store.keyword.heading_vectors(labels) == {}
    assert "heading_rank" in retriever.retrieve("winch leak base", k=2)[0].metadata
    assert store.keyword.heading_vectors(labels).keys() == labels
    # A deleted document's headings go with its chunks.
    store.delete_document(document_id(faq / "winch.md"))
    assert store.keyword.heading_vectors(labels) == {}
    assert store.keyword._db.execute("SELECT count(*) FROM heading_vector").fetchone()[0] == 0


def test_rrf_weights_scale_one_ranking():
    """Equal weights by default; a weight scales that ranking's 1/(k + rank) terms only."""
    from rag.retrieval import rrf

    rankings = {"dense_rank": ["a", "b"], "bm25_rank": ["b", "a"]}
    equal, ranks = rrf(rankings)
    assert equal["a"] == equal["b"] == 1 / 61 + 1 / 62 and ranks["a"] == {"dense_rank": 1, "bm25_rank": 2}
    weighted, _ = rrf(rankings, weights={"bm25_rank": 2.0})
    assert weighted["b"] == 1 / 62 + 2 / 61 > weighted["a"] == 1 / 61 + 2 / 62
