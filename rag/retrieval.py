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

Why a third ranking, by section heading. In a FAQ or a manual whose sections are questions
("5.22 Why does the anchor winch run slower in winter?"), a reader's question restates one
section's heading in other words, and the bodies never name their subject: the words it shares
with the text are the subject's ("anchor winch"), which the heading path gives to every sibling
section alike. Measured on such sets, the dense ranking mostly had the right section first, but
BM25 ranked a sibling first, or the chapter's short intro (same words, shorter text: BM25's length
normalisation), and equal-weight fusion let that noise win. A heading embedded on its own is the
closest representation of what the section answers, so each candidate is also ranked by its
*label*'s cosine to the query: its section heading path's (rag.context.heading_label, without the
document title, which all sections of a document share) when it has one, else its own text's
(so in a collection mixing plain text with structured documents, a chunk under no heading still
takes part instead of every headed chunk getting a free vote); ties (chunks of one section) go by
the chunk's own cosine. The ranking is fused only when some candidate has a heading: for plain
text (XQuAD, COVID-QA) it would be a second copy of the dense ranking, so retrieval there is
exactly what it was. The heading vectors are a few short texts per document, embedded at ingest
and kept in the keyword index file (rag.store.DocumentStore.heading_vectors);
`metadata["heading_rank"]` is a hit's rank in this list.

The keyword index is rag.keyword's persistent BM25 index in SQLite (rag.bm25), kept in step with
the collection by the store's writes (no rebuild after a change). Its search runs on a worker thread while the
query is embedded and Chroma searched (SQLite and ONNX Runtime both release the GIL). Hits are
read back from Chroma, so a chunk deleted since it was indexed is never returned.

Both retrievers are LangChain `BaseRetriever`s: `invoke(query)` returns `Document`s whose metadata
holds source, page, chunk_id and score (and the ranks), so they drop into any LCEL chain; the
answer chain uses `retrieve()`, which returns the same hits as `SearchHit`s.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.context import heading_label
from rag.keyword import tokenize  # noqa: F401  (re-exported: the tokenizer of the keyword index)
from rag.schema import SearchHit
from rag.settings import Settings
from rag.store import DocumentStore

RRF_K = 60
MMR_LAMBDA = 0.5
_keyword_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyword-search")


def rrf(
    rankings: dict[str, list[str]], k: int = RRF_K, weights: dict[str, float] | None = None
) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    """Reciprocal Rank Fusion of named rankings (lists of ids, best first): each id's sum of
    weight / (k + rank) (weight 1 unless given), and the rank it had in each list."""
    fused: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ranking in rankings.items():
        weight = (weights or {}).get(name, 1.0)
        for rank, cid in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + weight / (k + rank)
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


def as_document(hit: SearchHit) -> Document:
    """A hit as a LangChain Document: its text, and source, page, chunk_id, score, rank in metadata."""
    return Document(
        page_content=hit.text, id=hit.chunk_id,
        metadata={**hit.metadata, "source": hit.source, "page": hit.page, "chunk_id": hit.chunk_id,
                  "score": hit.score, "rank": hit.rank},
    )


class HitRetriever(BaseRetriever):
    """A retriever of SearchHits, which the answer chain reads: `retrieve()` gives SearchHits,
    LangChain's `invoke()` the same as Documents. Subclasses implement `retrieve` and `count`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    settings: Settings
    #: Passages per question; None: the settings' k.
    k: int | None = None

    @property
    def embeddings(self):
        """The LangChain Embeddings queries are embedded with (None: no vectors, keyword scores only)."""
        return None

    def retrieve(self, query: str, k: int | None = None, **options: Any) -> list[SearchHit]:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **options: Any
    ) -> list[Document]:
        return [as_document(hit) for hit in self.retrieve(query, k if k is not None else self.k, **options)]


class Retriever(HitRetriever):
    """Hybrid search of one collection (see the module docstring)."""

    store: DocumentStore
    #: Fuse the heading ranking (see the module docstring) when some candidate has a heading;
    #: benchmarks switch it off for an ablation.
    heading_ranking: bool = True
    #: Weights of the fused rankings by name ("dense_rank", "bm25_rank", "heading_rank"); 1 when
    #: absent. Equal by default; benchmarks pass others to measure them (bench/retrieval_table.py).
    ranking_weights: dict[str, float] = {}

    def __init__(self, store: DocumentStore, settings: Settings, **options: Any):
        super().__init__(store=store, settings=settings, **options)

    @property
    def embeddings(self):
        """The LangChain Embeddings queries are embedded with."""
        return self.store.embeddings

    def count(self) -> int:
        return self.store.count()

    def retrieve(
        self, query: str, k: int | None = None, *, hybrid: bool | None = None, mmr: bool | None = None
    ) -> list[SearchHit]:
        k = (self.k or self.settings.k) if k is None else k
        hybrid = self.settings.hybrid if hybrid is None else hybrid
        mmr = self.settings.mmr if mmr is None else mmr
        if k < 1:
            return []
        # Candidates per ranking. Not capped by the collection's size: Chroma returns what there is,
        # and counting a collection costs ~11 ms at 100,000 chunks, as much as the search itself.
        n = max(20, 4 * k)

        keyword_future = _keyword_pool.submit(self._keyword, query, n) if hybrid else None
        qvec = _unit(self.embeddings.embed_query(query))  # embedded once
        chunks: dict[str, tuple[str, dict, np.ndarray]] = {}  # id -> (text, metadata, unit vector)
        self._collect(chunks, self.store.query_by_vector(qvec.tolist(), n))
        cosine = {cid: float(vec @ qvec) for cid, (_, _, vec) in chunks.items()}

        dense = sorted(chunks, key=lambda cid: -cosine[cid])
        if mmr and dense:
            order = mmr_order(qvec, np.stack([chunks[cid][2] for cid in dense]))
            dense = [dense[i] for i in order]
        rankings = {"dense_rank": dense}
        if hybrid:
            keyword = keyword_future.result()
            missing = [cid for cid in keyword if cid not in chunks]
            if missing:  # BM25-only hits: fetch their stored embeddings for a real cosine
                extra = self.store.get_by_ids(missing)
                self._collect(chunks, extra)
                cosine.update({c.id: float(chunks[c.id][2] @ qvec) for c in extra})
            rankings["bm25_rank"] = [cid for cid in keyword if cid in chunks]  # minus any deleted since
            if self.heading_ranking:
                by_heading = self._by_heading(chunks, cosine, qvec, n)
                if by_heading:
                    rankings["heading_rank"] = by_heading

        fused, ranks = rrf(rankings, weights=self.ranking_weights)
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

    def _by_heading(self, chunks, cosine: dict[str, float], qvec: np.ndarray, n: int) -> list[str]:
        """The top-n candidates by their label's cosine to the query: the section heading's when
        the chunk has one, else the chunk's own (ties: the chunk's own cosine); [] when no
        candidate has a heading."""
        labels = {cid: heading_label(meta) for cid, (_, meta, _) in chunks.items()}
        if not any(labels.values()):
            return []
        vectors = self.store.heading_vectors(set(labels.values()))
        label_cosine = {label: float(_unit(v) @ qvec) for label, v in vectors.items()}

        def score(cid: str) -> float:  # a chunk under no heading ("") is its own label
            return label_cosine.get(labels[cid], cosine[cid])

        return sorted(chunks, key=lambda cid: (-score(cid), -cosine[cid]))[:n]

    def _keyword(self, query: str, n: int) -> list[str]:
        """Ids of the top-n BM25 chunks (sharing at least one query term)."""
        return [cid for cid, _ in self.store.keyword_index().search(query, n)]


class MergedRetriever(HitRetriever):
    """Several collections searched as one (a hosted demo's shared documents plus a visitor's own):
    each ranks on its own, the rankings are fused by RRF like dense and keyword are."""

    retrievers: list[Retriever]

    def __init__(self, retrievers: list[Retriever], **options: Any):
        settings = retrievers[0].settings if retrievers else Settings()
        super().__init__(retrievers=retrievers, settings=options.pop("settings", settings), **options)

    @property
    def embeddings(self):
        return self.retrievers[0].embeddings if self.retrievers else None

    def count(self) -> int:
        return sum(r.count() for r in self.retrievers)

    def retrieve(self, query: str, k: int | None = None, **options) -> list[SearchHit]:
        lists = [r.retrieve(query, k, **options) for r in self.retrievers]
        if len(lists) == 1:
            return lists[0]
        by_id = {hit.chunk_id: hit for hits in lists for hit in hits}
        fused, _ = rrf({str(i): [hit.chunk_id for hit in hits] for i, hits in enumerate(lists)})
        order = sorted(fused, key=lambda cid: (-fused[cid], -by_id[cid].score))
        k = (self.k or self.settings.k) if k is None else k
        return [replace(by_id[cid], rank=rank) for rank, cid in enumerate(order[:k], start=1)]
