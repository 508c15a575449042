"""Retrieval: dense (Chroma) and keyword (BM25) rankings, fused with Reciprocal Rank Fusion.

Why fusion. MiniLM embeddings capture meaning but blur exact tokens: a part number such as
"XK-4471-B", a surname or a rare term often sits nowhere near the top of a dense ranking, while
BM25 finds it at once; BM25 in turn misses the paraphrases that embeddings catch. The two scores
live on incomparable scales (cosine in [-1, 1]; BM25 unbounded and corpus dependent), so ranks
are fused, not scores: RRF, sum over lists of 1 / (60 + rank), needs no weights or normalising.

Why real cosine scores. An RRF value only says how a chunk ranks *for this query*: the best chunk
of a corpus that knows nothing about the question gets the same 1/61 as a perfect match. The
answer chain refuses when no passage is close enough, so every hit's `score` is the cosine
similarity of the query embedding and the chunk's stored embedding, also for chunks that only
BM25 found (their embeddings are fetched from Chroma). The fused value is `metadata["rrf"]`, the
ranks it came from `metadata["dense_rank"]` / `metadata["bm25_rank"]`.

The BM25 index is built lazily from every chunk in the collection and cached per store. It is
rebuilt when this process wrote to the store (`DocumentStore.revision`) or the chunk count changed;
every RECHECK_SECONDS the sorted chunk ids are compared as well, which catches another process's
writes to a Chroma server. A stale index can only miss new chunks for that long (dense search
still finds them): hits are read back from Chroma, so a deleted chunk is never returned.
"""

from __future__ import annotations

import math
import re
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from rag.schema import SearchHit
from rag.settings import Settings
from rag.store import DocumentStore

RRF_K = 60
MMR_LAMBDA = 0.5
RECHECK_SECONDS = 30.0
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "a an and are as at be been but by can did do does for from had has have how i if in into is it "
    "its me my no not of on or our so such than that the their them then there these they this to "
    "was we were what when where which while who whom why will with you your".split()
)


def tokenize(text: str) -> list[str]:
    """Lowercased unicode words and numbers, minus a small English stopword list."""
    return [t for t in _WORD.findall(text.lower()) if t not in _STOPWORDS]


class BM25:
    """Okapi BM25 with rank_bm25's BM25Okapi formula (k1 1.5, b 0.75, negative idf floored at
    0.25 x the mean idf), over an inverted index: a query touches only the postings of its own
    terms, so it costs milliseconds at 100,000 chunks where rank_bm25 scans every chunk."""

    def __init__(self, corpus: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        self.size = len(corpus)
        lengths = np.array([len(doc) for doc in corpus], dtype=np.float64)
        average = lengths.mean() if self.size and lengths.sum() else 1.0
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, doc in enumerate(corpus):
            for term, tf in Counter(doc).items():
                docs, tfs = postings.setdefault(term, ([], []))
                docs.append(i)
                tfs.append(tf)
        idf = {t: math.log(self.size - len(d) + 0.5) - math.log(len(d) + 0.5) for t, (d, _) in postings.items()}
        floor = epsilon * (sum(idf.values()) / len(idf)) if idf else 0.0
        norm = k1 * (1 - b + b * lengths / average)
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, (docs, tfs) in postings.items():
            rows, tf = np.array(docs, dtype=np.int64), np.array(tfs, dtype=np.float64)
            weight = (idf[term] if idf[term] >= 0 else floor) * tf * (k1 + 1) / (tf + norm[rows])
            self._postings[term] = (rows, weight)

    def get_scores(self, query: list[str]) -> np.ndarray:
        scores = np.zeros(self.size)
        for term, count in Counter(query).items():
            if term in self._postings:
                rows, weight = self._postings[term]
                scores[rows] += count * weight
        return scores


@dataclass
class _KeywordIndex:
    ids: list[str]  # row i of the BM25 index is chunk ids[i]
    fingerprint: list[str]  # sorted ids: the collection content the index was built from
    bm25: BM25 | None  # None when no chunk has a single token
    state: tuple[int, int] = (-1, -1)  # (store.revision, chunk count) when last checked
    checked: float = 0.0  # time.monotonic() of the last full id comparison


_indexes: "weakref.WeakKeyDictionary[DocumentStore, _KeywordIndex]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def keyword_index(store: DocumentStore) -> _KeywordIndex:
    """The store's BM25 index, rebuilt if the collection's chunk ids changed since it was built."""
    state = (store.revision, store.count())
    cached = _indexes.get(store)
    if cached is not None and cached.state == state and time.monotonic() - cached.checked < RECHECK_SECONDS:
        return cached
    current = sorted(i for got in store.pages([]) for i in got["ids"])
    with _lock:
        cached = _indexes.get(store)
        if cached is not None and cached.fingerprint == current:
            cached.state, cached.checked = state, time.monotonic()
            return cached
        ids: list[str] = []
        tokens: list[list[str]] = []
        for got in store.pages(["documents"]):
            ids.extend(got["ids"])
            tokens.extend(tokenize(text or "") for text in got["documents"])
        bm25 = BM25(tokens) if any(tokens) else None
        _indexes[store] = index = _KeywordIndex(ids, sorted(ids), bm25, state, time.monotonic())
        return index


def rrf(rankings: dict[str, list[str]], k: int = RRF_K) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """Reciprocal Rank Fusion of named rankings (lists of ids, best first): each id's sum of
    1 / (k + rank), and the rank it had in each list."""
    fused: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ranking in rankings.items():
        for rank, cid in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(cid, {})[name] = rank
    return fused, ranks


def mmr_order(query: np.ndarray, embeddings: np.ndarray, lam: float = MMR_LAMBDA) -> list[int]:
    """All rows of `embeddings` (unit vectors) in maximal-marginal-relevance order."""
    relevance = embeddings @ query
    similarity = embeddings @ embeddings.T
    redundancy = np.zeros(len(embeddings))
    left = np.ones(len(embeddings), dtype=bool)
    order: list[int] = []
    for _ in range(len(embeddings)):
        gain = np.where(left, lam * relevance - (1 - lam) * redundancy, -np.inf)
        best = int(np.argmax(gain))
        order.append(best)
        left[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return order


def _unit(vector) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(v)
    return v / norm if norm else v


class Retriever:
    def __init__(self, store: DocumentStore, settings: Settings):
        self.store = store
        self.settings = settings

    def count(self) -> int:
        return self.store.count()

    def retrieve(
        self, query: str, k: int | None = None, *, hybrid: bool | None = None, mmr: bool | None = None
    ) -> list[SearchHit]:
        k = self.settings.k if k is None else k
        hybrid = self.settings.hybrid if hybrid is None else hybrid
        mmr = self.settings.mmr if mmr is None else mmr
        total = self.store.count()
        if k < 1 or total == 0:
            return []
        n = min(max(20, 4 * k), total)

        qvec = _unit(self.store.embedder.embeddings.embed_query(query))  # embedded once
        chunks: dict[str, tuple[str, dict, np.ndarray]] = {}  # id -> (text, metadata, unit vector)
        self._collect(chunks, self.store.query_by_vector(qvec.tolist(), n))
        cosine = {cid: float(vec @ qvec) for cid, (_, _, vec) in chunks.items()}

        dense = sorted(chunks, key=lambda cid: -cosine[cid])
        if mmr and dense:
            order = mmr_order(qvec, np.stack([chunks[cid][2] for cid in dense]))
            dense = [dense[i] for i in order]
        rankings = {"dense_rank": dense}
        if hybrid:
            keyword = self._keyword(query, n)
            missing = [cid for cid in keyword if cid not in chunks]
            if missing:  # BM25-only hits: fetch their stored embeddings for a real cosine
                extra = self.store.get_by_ids(missing)
                self._collect(chunks, extra)
                cosine.update({c.id: float(chunks[c.id][2] @ qvec) for c in extra})
            rankings["bm25_rank"] = [cid for cid in keyword if cid in chunks]  # minus any deleted since

        fused, ranks = rrf(rankings)
        order = sorted(fused, key=lambda cid: (-fused[cid], -cosine[cid])) if hybrid else dense

        hits = []
        for rank, cid in enumerate(order[:k], start=1):
            text, meta, _ = chunks[cid]
            hits.append(
                SearchHit(
                    rank=rank,
                    score=round(cosine[cid], 4),
                    source=meta.get("source", ""),
                    page=meta.get("page"),
                    chunk_id=cid,
                    text=text,
                    metadata={**meta, **ranks[cid], "rrf": fused[cid]},
                )
            )
        return hits

    @staticmethod
    def _collect(chunks, stored) -> None:
        for chunk in stored:
            chunks[chunk.id] = (chunk.text, chunk.metadata, _unit(chunk.embedding))

    def _keyword(self, query: str, n: int) -> list[str]:
        """Ids of the top-n BM25 chunks with a positive score (sharing at least one query term)."""
        tokens = tokenize(query)
        index = keyword_index(self.store)
        if not tokens or index.bm25 is None:
            return []
        scores = index.bm25.get_scores(tokens)
        matching = np.flatnonzero(scores > 0)  # usually a small part of a large collection
        top = matching[np.argsort(-scores[matching], kind="stable")[:n]]
        return [index.ids[i] for i in top]


class MergedRetriever:
    """Several collections searched as one (a hosted demo's shared documents plus a visitor's own):
    each ranks on its own, the rankings are fused by RRF like dense and keyword are."""

    def __init__(self, retrievers: list[Retriever]):
        self.retrievers = retrievers

    def count(self) -> int:
        return sum(r.count() for r in self.retrievers)

    def retrieve(self, query: str, k: int | None = None, **options) -> list[SearchHit]:
        lists = [r.retrieve(query, k, **options) for r in self.retrievers]
        if len(lists) == 1:
            return lists[0]
        by_id = {hit.chunk_id: hit for hits in lists for hit in hits}
        fused, _ = rrf({str(i): [hit.chunk_id for hit in hits] for i, hits in enumerate(lists)})
        order = sorted(fused, key=lambda cid: (-fused[cid], -by_id[cid].score))
        k = self.retrievers[0].settings.k if k is None else k
        return [replace(by_id[cid], rank=rank) for rank, cid in enumerate(order[:k], start=1)]
