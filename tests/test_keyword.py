"""The persistent keyword index (BM25 over postings in SQLite, rag.bm25): exact ranking (a property
test against brute force), conversion of FTS5-era files, incremental writes, restart, deletion,
repair by id difference when another process writes, and headings in the indexed text."""

from __future__ import annotations

import math

import pytest

from ingest.pipeline import document_id
from rag.keyword import KeywordIndex, tokenize
from rag.retrieval import Retriever
from rag.store import open_store

TEXTS = [
    "The keeper lit the lamp at dusk and the lamp burned all night.",
    "Lamp oil is stored in the north shed; the shed is locked.",
    "Storm log: wind from the west, the keeper stayed inside.",
    "Part XK-4471-B fits the lamp housing of the lamp.",
] + [f"filler text number {i} about the sea and the gulls" for i in range(20)]


def test_bm25_scores_match_rank_bm25():
    """The scores are Okapi BM25 (k1 1.2, b 0.75), as FTS5's bm25() gave them: the same as the
    reference implementation, rank_bm25 (a test dependency only), for terms in under half the chunks."""
    from rank_bm25 import BM25Okapi

    index = KeywordIndex(None)
    index.add([f"c{i}" for i in range(len(TEXTS))], TEXTS)
    reference = BM25Okapi([tokenize(t) for t in TEXTS], k1=1.2, b=0.75)
    for query in ["lamp", "keeper lamp", "shed oil", "xk 4471", "storm keeper west"]:
        expected = reference.get_scores(tokenize(query))
        hits = index.search(query, 50)
        assert hits, query
        assert [cid for cid, _ in hits] == sorted((cid for cid, _ in hits), key=lambda c: -expected[int(c[1:])])
        for cid, score in hits:
            assert score == pytest.approx(expected[int(cid[1:])], rel=1e-6), (query, cid)
        # Every chunk with a positive reference score is found, and only those.
        assert {cid for cid, _ in hits} == {f"c{i}" for i, s in enumerate(expected) if s > 0}
    assert index.search("nothing matches this", 5) == [] and index.search("the and of", 5) == []
    # A term in over half the chunks has an idf of ~0 in FTS5 (rank_bm25 floors it above 0): it
    # ranks nothing, so it is not even looked up.
    assert [c for c, _ in index.search("gulls lamp", 50)] == [c for c, _ in index.search("lamp", 50)]
    assert index.search("gulls", 5) == []


def test_add_replace_remove_and_persist(tmp_path):
    path = tmp_path / "kw" / "index.sqlite3"
    index = KeywordIndex(path)
    index.add(["a", "b"], ["Signal flag ZQ-5150 in the chart room.", "Fog horn manual."])
    index.add(["a"], ["The radio code is MV-7777-C."])  # same id: replaced, not duplicated
    assert index.count() == 2 and [c for c, _ in index.search("zq 5150", 5)] == []
    assert [c for c, _ in index.search("MV-7777-C", 5)] == ["a"]
    index.close()

    reopened = KeywordIndex(path)  # a restart: nothing is rebuilt, the file holds it all
    assert reopened.count() == 2 and reopened.ids() == {"a", "b"}
    assert [c for c, _ in reopened.search("fog horn", 5)] == ["b"]
    reopened.remove(["b"])
    assert reopened.search("fog horn", 5) == [] and reopened.count() == 1


def test_sync_by_id_difference_reads_only_the_missing_texts():
    index = KeywordIndex(None)
    index.add(["keep", "gone"], ["kept chunk about pumps", "deleted chunk about winches"])
    asked = []

    def fetch(ids):
        asked.extend(ids)
        return {cid: f"new chunk {cid} about heaters" for cid in ids if cid != "vanished"}

    assert index.sync(["keep", "new1", "vanished"], fetch) == (1, 1)
    assert sorted(asked) == ["new1", "vanished"]  # never the text of "keep"
    assert index.ids() == {"keep", "new1"}
    assert [c for c, _ in index.search("heaters", 5)] == ["new1"] and index.search("winches", 5) == []


# --------------------------------------------------------------------------------------------
# the search is exact: the top-n of a brute-force BM25, ties included, after any writes

VOCAB = ["lamp", "oil", "shed", "keeper", "storm", "fog", "bell", "gull", "the", "of"]  # two stopwords


def brute_force(chunks: dict[str, list[str]], query: str, n: int) -> list[tuple[str, float]]:
    """rank_bm25's BM25Okapi over the live chunks (in the order they were last written), with
    FTS5's idf floor (1e-6 where the idf is not positive) for the terms in at most half the chunks
    (the rest rank nothing); equal scores: the chunk written earlier first."""
    from rank_bm25 import BM25Okapi

    ids, corpus = list(chunks), list(chunks.values())
    df = {t: sum(t in doc for doc in corpus) for t in dict.fromkeys(tokenize(query))}
    terms = [t for t, d in df.items() if 0 < d <= len(corpus) / 2]
    if not terms:
        return []
    reference = BM25Okapi(corpus, k1=1.2, b=0.75)
    for t in terms:
        reference.idf[t] = max(math.log((len(corpus) - df[t] + 0.5) / (df[t] + 0.5)), 0) or 1e-6
    scores = reference.get_scores(terms)
    found = [i for i, doc in enumerate(corpus) if any(t in doc for t in terms)]
    return [(ids[i], float(scores[i])) for i in sorted(found, key=lambda i: (-scores[i], i))[:n]]


def _write_ops():
    from hypothesis import strategies as st

    text = st.lists(st.sampled_from(VOCAB), max_size=12).map(" ".join)
    chunk_id = st.sampled_from([f"c{i}" for i in range(24)])
    add = st.tuples(st.just("add"), st.dictionaries(chunk_id, text, min_size=1, max_size=8))
    remove = st.tuples(st.just("remove"), st.lists(chunk_id, max_size=4))
    return st.lists(st.one_of(add, add, remove), min_size=1, max_size=8)


def test_the_top_n_is_a_brute_force_bm25s_ties_included():
    """Random corpora, writes (adds, replacements, removals) and queries: the search returns what
    a brute-force BM25 returns, the same ids in the same order with the same scores, to the bit.
    Blocks of 4 chunks, so chunks, replacements and removals cross block boundaries."""
    from unittest import mock

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import rag.bm25

    query = st.lists(st.sampled_from(VOCAB + ["absent"]), min_size=1, max_size=5).map(" ".join)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ops=_write_ops(), queries=st.lists(query, min_size=1, max_size=4), n=st.integers(1, 6))
    def check(ops, queries, n):
        index, live = KeywordIndex(None), {}
        for op, arg in ops:
            if op == "add":
                index.add(list(arg), list(arg.values()))
                for cid, text in arg.items():
                    live.pop(cid, None)
                    live[cid] = tokenize(text)
            else:
                index.remove(arg)
                for cid in arg:
                    live.pop(cid, None)
        for q in queries:
            assert index.search(q, n) == brute_force(live, q, n), (q, n)

    with mock.patch.multiple(rag.bm25, BLOCK_BITS=2, BLOCK=4):
        check()


def test_a_large_corpus_over_many_blocks_is_exact():
    """2,000 chunks over 1,024-chunk blocks and (patched) 32-chunk ones: the same top n as brute
    force, a term in over half the chunks left out, a term in exactly half kept (idf floor)."""
    import random
    from unittest import mock

    import rag.bm25

    rng = random.Random(7)
    texts = {f"d{i}": " ".join(rng.choices(VOCAB[:6], k=rng.randint(3, 30)) + (["beacon"] if i % 97 == 0 else [])
                               + (["half"] if i % 2 else [])) for i in range(2000)}
    live = {cid: tokenize(t) for cid, t in texts.items()}
    queries = ["beacon storm", "beacon", "storm fog beacon", "half beacon", "lamp oil shed keeper"]
    index = KeywordIndex(None)
    index.add(list(texts), list(texts.values()))
    assert [index.search(q, 5) for q in queries] == [brute_force(live, q, 5) for q in queries]
    with mock.patch.multiple(rag.bm25, BLOCK_BITS=5, BLOCK=32):
        small = KeywordIndex(None)
        small.add(list(texts), list(texts.values()))
        assert [small.search(q, 5) for q in queries] == [brute_force(live, q, 5) for q in queries]
    assert index.search("half", 5) and index.search("half", 5)[0][1] < 1e-5  # idf floored, still found


def test_a_file_of_the_fts5_version_is_converted_with_the_same_ranking(tmp_path):
    """An index file written by the FTS5 version opens with the same chunks and the same top-n
    (FTS5's own ORDER BY bm25() as the reference), and without its FTS5 table."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE chunk (rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, doc_id TEXT, "
                "doc_hash TEXT, heading TEXT)")
    old.execute("CREATE VIRTUAL TABLE body USING fts5(tokens, tokenize='unicode61 remove_diacritics 0')")
    for i, text in enumerate(TEXTS * 3):
        old.execute("INSERT INTO chunk (rowid, id, doc_id, doc_hash, heading) VALUES (?, ?, 'd', 'h', '')", (i + 1, f"c{i}"))
        old.execute("INSERT INTO body (rowid, tokens) VALUES (?, ?)", (i + 1, " ".join(tokenize(text))))
    old.commit()
    queries = ["lamp", "keeper lamp", "shed oil", "xk 4471", "storm keeper west", "filler sea lamp"]
    expected = {}
    for q in queries:
        match = " OR ".join(f'"{t}"' for t in dict.fromkeys(tokenize(q)) if t != "filler" and t != "sea")
        expected[q] = [(cid, -s) for cid, s in old.execute(
            "SELECT chunk.id, bm25(body) FROM body JOIN chunk ON chunk.rowid = body.rowid WHERE body MATCH ? "
            "ORDER BY bm25(body) LIMIT 10", (match,))]
    old.close()
    index = KeywordIndex(path)
    assert index.count() == len(TEXTS) * 3
    for q in queries:
        assert index.search(q, 10) == expected[q], q
    index.close()
    names = {name for (name,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "body" not in names and "bm25_posting" in names


# --------------------------------------------------------------------------------------------
# through the store and the ingest pipeline


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "supplies.txt").write_text("Winter supplies: XK-4471-B is stored in the north shed.", encoding="utf-8")
    (folder / "radio.txt").write_text("The backup radio is tested every Sunday at noon.", encoding="utf-8")
    return folder


def _no_sync(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the keyword index was resynced")

    monkeypatch.setattr(KeywordIndex, "sync", fail)


def test_an_upload_is_searchable_by_keyword_without_a_rebuild(docs, ingestor, store, monkeypatch, settings):
    assert ingestor.ingest([docs]).ok
    _no_sync(monkeypatch)
    (docs / "new.txt").write_text("Signal flag code ZQ-5150 is kept in the chart room.", encoding="utf-8")
    assert ingestor.ingest([docs / "new.txt"]).ok
    hit = Retriever(store, settings).retrieve("ZQ-5150", k=1)[0]
    assert "ZQ-5150" in hit.text and hit.metadata["bm25_rank"] == 1
    assert store.keyword.count() == store.count() == 3


def test_a_restart_keeps_the_index(docs, ingestor, store, settings, embedder, monkeypatch):
    assert ingestor.ingest([docs]).ok
    path = store.keyword.path
    assert path.is_file() and path.is_relative_to(settings.data_dir)
    _no_sync(monkeypatch)
    reopened = open_store(settings, embedder)  # as a new process would
    assert reopened.keyword.path == path and reopened.keyword.count() == 2
    hit = Retriever(reopened, settings).retrieve("XK-4471-B", k=1)[0]
    assert "XK-4471-B" in hit.text and hit.metadata["bm25_rank"] == 1


def test_a_deletion_leaves_no_keyword_hit(docs, ingestor, store, settings):
    assert ingestor.ingest([docs]).ok
    assert store.delete_document(document_id(docs / "supplies.txt")) == 1
    assert store.keyword.search("XK-4471-B north shed", 10) == []
    assert all("XK-4471-B" not in h.text for h in Retriever(store, settings).retrieve("XK-4471-B", k=10))
    # An update replaces the old version's chunks in the index too.
    (docs / "radio.txt").write_text("The backup radio is tested every Monday at dawn.", encoding="utf-8")
    assert ingestor.ingest([docs / "radio.txt"]).files[0].status == "updated"
    assert store.keyword.search("sunday noon", 10) == [] and store.keyword.count() == store.count() == 1


def test_another_process_writes_are_picked_up_by_id_difference(docs, ingestor, store, settings, embedder):
    """Writes through another handle (another process on a Chroma server) bypass this process's
    index: the count differs, so the next search repairs it, reading only the new chunks."""
    assert ingestor.ingest([docs]).ok
    other = open_store(settings, embedder, create=False).collection  # the bare Chroma collection
    old = other.get(where={"doc_id": document_id(docs / "supplies.txt")}, include=["metadatas"])
    other.delete(ids=old["ids"])
    other.add(ids=["other-1", "other-2"], documents=["Lamp oil order: LX-2020.", "Fog bell rung at 06:00."],
              metadatas=[old["metadatas"][0]] * 2, embeddings=embedder.embeddings.embed_documents(["a", "b"]))
    retriever = Retriever(store, settings)
    assert retriever.retrieve("LX-2020", k=1)[0].chunk_id == "other-1"
    assert store.keyword.ids() == {"other-1", "other-2", *store.collection.get(include=[])["ids"]}
    assert all("XK-4471-B" not in h.text for h in retriever.retrieve("XK-4471-B", k=5))


def test_same_count_replacement_is_seen_on_the_periodic_recheck(docs, ingestor, store, settings, embedder):
    assert ingestor.ingest([docs]).ok
    other = open_store(settings, embedder, create=False).collection
    got = other.get(where={"doc_id": document_id(docs / "radio.txt")}, include=["metadatas"])
    other.delete(ids=got["ids"])
    other.add(ids=["swap"], documents=["Pump seal PS-1234 goes in the blue box."], metadatas=got["metadatas"],
              embeddings=embedder.embeddings.embed_documents(["x"]))
    assert store.keyword.count() == store.count()  # one for one: the counts cannot tell
    store.recheck_seconds = 0.0  # as in server mode, once the recheck interval has passed
    hit = Retriever(store, settings).retrieve("PS-1234", k=1)[0]
    assert hit.chunk_id == "swap" and hit.metadata["bm25_rank"] == 1


def test_an_index_file_lost_is_rebuilt_from_the_collection(docs, ingestor, store, settings, embedder):
    assert ingestor.ingest([docs]).ok
    path = store.keyword.path
    store.keyword.close()
    path.unlink()
    for extra in path.parent.glob(path.name + "-*"):
        extra.unlink()
    reopened = open_store(settings, embedder)
    assert reopened.keyword.count() == 0
    assert "XK-4471-B" in Retriever(reopened, settings).retrieve("XK-4471-B", k=1)[0].text
    assert reopened.keyword.count() == 2


# --------------------------------------------------------------------------------------------
# headings in the indexed text


FAQ = """# Fog horn FAQ

## How do I reset the fog horn after a power cut?

Hold the grey button for five seconds until the panel beeps twice, then release it.

## Why is the lamp dimmer than usual?

Soot on the inner glass is the usual reason; wipe it with a dry cloth.

## Where are the spare fuses kept?

In the tin box on the second shelf of the store room, next to the matches.
"""


def test_a_chunks_heading_is_searchable_but_not_shown(tmp_path, ingestor, store, settings):
    path = tmp_path / "horn.md"
    path.write_text(FAQ, encoding="utf-8")
    assert ingestor.ingest([path]).ok
    query = "reset fog horn power cut"  # words only in the heading
    keyword = store.keyword.search(query, 5)
    chunk = store.collection.get(ids=[keyword[0][0]], include=["documents", "metadatas"])
    assert chunk["documents"][0].startswith("Hold the grey button")  # shown text: the chunk's own
    assert chunk["metadatas"][0]["heading"].endswith("How do I reset the fog horn after a power cut?")
    dense = Retriever(store, settings).retrieve("How can I reset the fog horn after the power went out?", k=1, hybrid=False)
    assert dense[0].text.startswith("Hold the grey button")
    assert "fog horn" not in dense[0].text.lower()


def test_the_token_limit_counts_the_heading(tmp_path, store, settings):
    from ingest.chunking import Chunker, ChunkLimits
    from langchain_core.documents import Document
    from rag.context import indexed_text

    limits = ChunkLimits.for_embedder(64, 8, store.embedder.max_tokens)
    chunker = Chunker(store.embedder.tokenizer, limits)
    heading = "Maintenance > " + " > ".join(f"Section {i} of the long outline" for i in range(12))
    body = " ".join(f"Sentence {i} says the keeper checks the lamp." for i in range(60))
    chunks = chunker.chunk([Document(page_content=body, metadata={"heading": heading})], title="service manual")
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.metadata["title"] == "service manual"
        assert chunker.count_tokens(indexed_text(chunk.page_content, chunk.metadata)) <= 64
    assert " ".join(c.page_content for c in chunks).count("Sentence 59 ") >= 1  # nothing dropped


def test_readable_titles():
    from rag.context import context_prefix, readable_title

    assert readable_title("visitor-faq.html") == "visitor faq"
    assert readable_title("000.txt") == "" and readable_title("2024_01.csv") == ""
    assert context_prefix({"title": "guide", "heading": "Guide > Install"}) == "guide\nGuide > Install"
    assert context_prefix({"title": "deck", "heading": "deck"}) == "deck"
    assert math.isclose(len(context_prefix({"heading": "x" * 1000})), 151)


def test_index_files_of_deleted_collections_are_removed(docs, ingestor, store, settings, embedder):
    assert ingestor.ingest([docs]).ok
    old = store.keyword.path
    store.client.delete_collection(store.name)
    other = open_store(settings.model_copy(update={"collection": "other"}), embedder)
    assert not old.exists() and other.keyword.path.parent == old.parent
