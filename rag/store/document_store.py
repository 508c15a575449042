"""DocumentStore: one Chroma collection, with the document-level operations ingestion and search
need (see the package docstring for the bookkeeping); the only class that holds a collection."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from rag.context import heading_label, indexed_text
from rag.keyword import KeywordIndex
from rag.schema import DocumentInfo, ReadReport, SearchHit

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from rag.embeddings import Embedder

_log = logging.getLogger(__name__)

PAGE = 5000  # rows per Chroma get() when scanning a whole collection
#: The embedded Chroma writes its vector index to disk after this many records (its default, 1000,
#: leaves up to 999 records to be re-inserted from its log at every open, which loses some: see
#: docs/robustness.md). Measured: no slower at 20,000 chunks (bench/README.md, issue 22).
SYNC_THRESHOLD = 2
#: A chunk counts as reachable by its own vector when it is among this many nearest.
OWN_VECTOR_K = 10
#: Chunks whose vectors are read at once by the reachability check.
CHECK_PAGE = 32
#: Chroma server mode: how often the keyword index compares its ids with the collection's even
#: when the chunk count has not changed (another process replaced chunks one for one).
RECHECK_SECONDS = 30.0


@dataclass(frozen=True)
class StoredVersion:
    doc_hash: str
    stored: int  # chunks of this version in the store
    expected: int  # chunks this version has

    @property
    def complete(self) -> bool:
        return self.stored == self.expected


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict
    embedding: list[float]


def _chunks(ids, documents, metadatas, embeddings) -> list[StoredChunk]:
    return [
        StoredChunk(cid, text or "", dict(meta or {}), vec)
        for cid, text, meta, vec in zip(ids, documents, metadatas, embeddings)
    ]


def _writer_marker(index_path: Path, pid: int) -> Path:
    return index_path.with_name(f"{index_path.name}.writer-{pid}")


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size




def _document_infos(versions) -> list[DocumentInfo]:
    """DocumentInfo per document from (doc_id, doc_hash, chunks stored, metadata) per version,
    in storage order: the newest version's source and report are the document's."""
    chunks: Counter = Counter()
    sources: dict[str, str] = {}
    reads: dict[str, ReadReport | None] = {}
    complete: dict[str, bool] = {}
    for doc_id, doc_hash, n, meta in versions:
        chunks[doc_id] += n
        sources[doc_id] = meta["source"]
        reads[doc_id] = ReadReport.from_metadata(meta)
        complete[doc_id] = doc_id not in complete and n == meta["chunk_count"]
    infos = [DocumentInfo(doc_id=d, source=sources[d], chunks=n, complete=complete[d], read=reads[d])
             for d, n in chunks.items()]
    return sorted(infos, key=lambda d: d.source)


class DocumentStore:
    """One Chroma collection, with the document-level operations ingestion and search need.

    `collection` is the chromadb collection; outside this module only tests and benchmarks look
    at it directly."""

    def __init__(self, client, collection, embedder: "Embedder | None", keyword: KeywordIndex | None = None,
                 *, recheck_seconds: float | None = None):
        self.client = client
        self.collection = collection
        self.embedder = embedder  # None: opened to list and delete only (rag docs), no model loaded
        # The keyword index is a derived copy of the collection, kept in step by every write here
        # and repaired by id difference when the counts disagree (see rag.keyword).
        self.keyword = keyword if keyword is not None else KeywordIndex(None)
        self.recheck_seconds = recheck_seconds  # None: only this process writes (embedded)
        self._checked = float("-inf")
        self.chroma_files: list[Path] = []  # the embedded Chroma's SQLite files (none for a server)
        self._stamp = None  # their (mtime, size) when the counts last agreed
        self._sync_lock = threading.Lock()
        self._vectorstore = None
        self._marker: Path | None = None  # this process's writer marker, once it wrote
        self.written: set[str] = set()  # ids written through this store (ingest checks them at the end)
        self.timings: Counter = Counter()  # seconds spent embedding and writing chunks (benchmarks read it)

    @property
    def embeddings(self):
        """The LangChain Embeddings of this store's vectors (None when opened without a model)."""
        return self.embedder.embeddings if self.embedder is not None else None

    @property
    def vectorstore(self):
        """LangChain's Chroma over the collection, made on first use (its import and the embedder
        are what listing documents does without)."""
        if self._vectorstore is None:
            if self.embedder is None:
                raise RuntimeError("this store was opened without an embedder: it can list and delete only")
            from langchain_chroma import Chroma

            self._vectorstore = Chroma(
                client=self.client,
                collection_name=self.collection.name,
                embedding_function=self.embedder.embeddings,
                create_collection_if_not_exists=False,
            )
        return self._vectorstore

    @property
    def name(self) -> str:
        return self.collection.name

    def count(self) -> int:
        return self.collection.count()

    @property
    def metadata(self) -> dict:
        """The collection's own metadata (embedding model, dimension, app bookkeeping)."""
        return dict(self.collection.metadata or {})

    def set_metadata(self, **values) -> None:
        """Add or change collection metadata keys, keeping the others (Chroma replaces the whole
        dict, and refuses to change the distance function, so that key is left out)."""
        meta = {k: v for k, v in self.metadata.items() if not k.startswith("hnsw:")}
        self.collection.modify(metadata={**meta, **values})

    # --- writing -------------------------------------------------------------------------
    def versions(self, doc_id: str) -> list[StoredVersion]:
        got = self.collection.get(where={"doc_id": doc_id}, include=["metadatas"])
        stored = Counter(m["doc_hash"] for m in got["metadatas"])
        expected = {m["doc_hash"]: m["chunk_count"] for m in got["metadatas"]}
        return [StoredVersion(h, n, expected[h]) for h, n in stored.items()]

    def add_chunks(self, chunks: "list[Document]", ids: list[str], batch_size: int = 256) -> None:
        """Embed and upsert; ids are stable, so a rerun after a crash overwrites, never duplicates.

        What is embedded and keyword-indexed is each chunk's indexed text (title and heading path
        in front, rag.context); what is stored as its document is the chunk's own text. Each
        section heading not embedded yet is embedded on its own too (one short text per section,
        none for a document without headings), for retrieval's heading ranking."""
        for start in range(0, len(chunks), batch_size):
            batch = chunks[start : start + batch_size]
            batch_ids = ids[start : start + batch_size]
            texts = [indexed_text(c.page_content, c.metadata) for c in batch]
            t0 = time.perf_counter()
            vectors = self.embedder.embeddings.embed_documents(texts)
            labels = {heading_label(c.metadata) for c in batch} - {""}
            headings = self._embed_headings(labels - self.keyword.heading_vectors(labels).keys())
            t1 = time.perf_counter()
            metadatas = [c.metadata for c in batch]
            self._mark_writer()
            with self.keyword.writing():
                self._write(batch_ids, vectors, [c.page_content for c in batch], metadatas)
                # after Chroma: the index never holds more
                self.keyword.add(batch_ids, texts, metadatas, heading_vectors=headings)
            self.timings["embed"] += t1 - t0
            self.timings["write"] += time.perf_counter() - t1

    def _write(self, ids: list[str], vectors, documents: list[str], metadatas: list[dict]) -> None:
        """Store these chunks. Ids already stored (a rerun completing a version a crash cut short)
        are deleted first and added afresh: Chroma's in-place update of a vector leaves some other
        chunks unreachable in its index (docs/robustness.md). A crash between the two leaves the
        version incomplete, which the next ingest completes."""
        existing = self.collection.get(ids=ids, include=[])["ids"]
        if existing:
            self.collection.delete(ids=existing)
        self.collection.add(ids=ids, embeddings=vectors, documents=documents, metadatas=metadatas)
        self.written.update(ids)

    def _mark_writer(self) -> None:
        """Leave a marker naming this process until it exits: one left by a dead process means it
        was killed after writing here, and the next open checks the vector index."""
        path = self.keyword.path
        if self._marker is not None or path is None or self.recheck_seconds is not None:
            return
        self._marker = _writer_marker(path, os.getpid())
        self._marker.touch()
        atexit.register(self._marker.unlink, missing_ok=True)

    # --- the vector index: every stored chunk reachable ---------------------------------------
    def stored_ids(self) -> list[str]:
        return [cid for got in self.pages([]) for cid in got["ids"]]

    def unreachable_ids(self, own_vector: Iterable[str] | None = None) -> set[str]:
        """Stored chunks a dense search cannot return: those a query for the whole collection
        leaves out (no path to them in the vector index), and of the `own_vector` ids (None: all)
        those not among the OWN_VECTOR_K nearest to their own stored vector (unless that many
        others lie at the same distance: duplicates)."""
        n = self.count()
        if n == 0:
            return set()
        probe = self.collection.get(limit=1, include=["embeddings"])["embeddings"]
        found = set(self._nearest([list(probe[0])], n)[0][0])
        missing = set(self.stored_ids()) - found
        # Own-vector queries a page of CHECK_PAGE at a time: the vectors of a whole page of PAGE
        # chunks as Python lists would hold ~60 MB (tests/test_memory_bounded.py).
        if own_vector is None:
            wanted = sorted(set(self.stored_ids()) - missing)
        else:
            wanted = sorted(set(own_vector) - missing)
        pages = (self.collection.get(ids=wanted[i : i + CHECK_PAGE], include=["embeddings"])
                 for i in range(0, len(wanted), CHECK_PAGE))
        for got in pages:
            if not len(got["ids"]):
                continue
            near_ids, near_dist = self._nearest([list(v) for v in got["embeddings"]], min(OWN_VECTOR_K, n))
            for cid, ids, dist in zip(got["ids"], near_ids, near_dist):
                if cid not in ids and dist[-1] > 1e-4:
                    missing.add(cid)
        return missing

    def _nearest(self, vectors: list[list[float]], n: int) -> tuple[list[list[str]], list[list[float]]]:
        """(ids, distances) of the n nearest chunks to each vector, as the vector index returns them."""
        got = self.collection.query(query_embeddings=vectors, n_results=n, include=["distances"])
        return got["ids"], got["distances"]

    def readd(self, ids: Iterable[str]) -> int:
        """Delete these chunks' vectors and add them again, re-embedding their stored text (what
        add_chunks embeds): a fresh insert links them into the index. Returns how many."""
        if self.embedder is None:
            raise RuntimeError("this store was opened without an embedder: it cannot re-embed")
        ids = sorted(set(ids))
        done = 0
        for start in range(0, len(ids), PAGE):
            got = self.collection.get(ids=ids[start : start + PAGE], include=["documents", "metadatas"])
            if not got["ids"]:
                continue
            texts = [indexed_text(t or "", m or {}) for t, m in zip(got["documents"], got["metadatas"])]
            vectors = self.embedder.embeddings.embed_documents(texts)
            self._mark_writer()
            with self.keyword.writing():
                self.collection.delete(ids=got["ids"])
                self.collection.add(ids=got["ids"], embeddings=vectors, documents=got["documents"],
                                    metadatas=got["metadatas"])
            done += len(got["ids"])
        return done

    def _embed_headings(self, labels) -> dict[str, bytes]:
        """label -> its embedding as float32 bytes (how the keyword index file keeps it)."""
        import numpy as np

        labels = sorted(labels)
        if not labels:
            return {}
        self.timings["heading_texts"] += len(labels)
        vectors = self.embedder.embeddings.embed_documents(labels)
        return {label: np.asarray(v, dtype=np.float32).tobytes() for label, v in zip(labels, vectors)}

    def heading_vectors(self, labels) -> dict:
        """label -> embedding (a float32 array) of these section heading labels (rag.context.
        heading_label). Normally stored at ingest; any missing (chunks indexed before heading
        vectors existed, or written by another process to a Chroma server) is embedded now and
        stored, so the next search finds it."""
        import numpy as np

        labels = {label for label in labels if label}
        found = self.keyword.heading_vectors(labels)
        missing = self._embed_headings(labels - found.keys())
        if missing:
            self.keyword.put_heading_vectors(missing)
        return {label: np.frombuffer(v, dtype=np.float32) for label, v in {**found, **missing}.items()}

    def delete_ids(self, ids: list[str]) -> None:
        if ids:
            self._mark_writer()
        for start in range(0, len(ids), PAGE):
            batch = ids[start : start + PAGE]
            with self.keyword.writing():
                self.collection.delete(ids=batch)
                self.keyword.remove(batch)

    def delete_other_versions(self, doc_id: str, keep_hash: str) -> None:
        where = {"$and": [{"doc_id": doc_id}, {"doc_hash": {"$ne": keep_hash}}]}
        self.delete_ids(self.collection.get(where=where, include=[])["ids"])

    def delete_document(self, doc_id: str) -> int:
        ids = self.collection.get(where={"doc_id": doc_id}, include=[])["ids"]
        self.delete_ids(ids)
        return len(ids)

    def clear(self) -> int:
        n = self.count()
        for ids in self._id_pages():
            self.delete_ids(ids)
        return n

    # --- the keyword index -------------------------------------------------------------------
    def keyword_index(self) -> KeywordIndex:
        """The keyword index, first repaired if it is out of step with the collection: when the
        chunk counts differ (another process wrote, or a crash fell between the two writes), when
        a write was cut short or its catalog lacks some chunk's document version, and in server
        mode every `recheck_seconds` as well. The collection is counted (~18 ms at 100k chunks under
        load, twice the keyword search) only when the embedded Chroma's files changed since the
        counts last agreed, or always for a server; the rest is two indexed lookups."""
        due = self.recheck_seconds is not None and time.monotonic() - self._checked > self.recheck_seconds
        stale = due or self.keyword.has_leftover_markers() or not self.keyword.catalog_complete()
        if not stale:
            stamp = self._chroma_stamp()  # taken first: a write landing during the count changes it
            if stamp is None or stamp != self._stamp:
                stale = self.keyword.count() != self.collection.count()
                self._stamp = None if stale else stamp
        if stale:
            self.sync_keyword_index()
        return self.keyword

    def _chroma_stamp(self) -> tuple | None:
        if not self.chroma_files:
            return None
        return tuple(_file_stamp(p) for p in self.chroma_files)

    def sync_keyword_index(self) -> tuple[int, int]:
        """Compare ids with the collection; index what is missing (reading only those chunks'
        texts), drop what is gone. Returns (added, removed)."""
        with self._sync_lock:
            ids = [cid for got in self.pages([]) for cid in got["ids"]]
            result = self.keyword.sync(ids, self._indexed_texts, catalog=True)
            self._checked = time.monotonic()
            return result

    def _indexed_texts(self, ids: list[str]) -> dict[str, tuple[str, dict]]:
        got = self.collection.get(ids=ids, include=["documents", "metadatas"])
        return {
            cid: (indexed_text(text or "", meta or {}), dict(meta or {}))
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"])
        }

    # --- reading -------------------------------------------------------------------------
    def pages(self, include: list[str]) -> Iterator[dict]:
        """The whole collection, PAGE rows at a time: Chroma get() results with `include`."""
        offset = 0
        while True:
            got = self.collection.get(limit=PAGE, offset=offset, include=include)
            if not got["ids"]:
                return
            yield got
            offset += len(got["ids"])

    def _id_pages(self) -> Iterator[list[str]]:
        """Pages of ids from the start, for deleting page after page (no offset: rows shift)."""
        while True:
            ids = self.collection.get(limit=PAGE, include=[])["ids"]
            if not ids:
                return
            yield ids

    def _all_metadatas(self) -> Iterator[dict]:
        for got in self.pages(["metadatas"]):
            yield from got["metadatas"]

    def query_by_vector(self, vector: list[float], n: int) -> list[StoredChunk]:
        """The n chunks nearest to `vector`, nearest first, with their stored embeddings."""
        got = self.collection.query(
            query_embeddings=[list(vector)], n_results=n, include=["documents", "metadatas", "embeddings"]
        )
        return _chunks(got["ids"][0], got["documents"][0], got["metadatas"][0], got["embeddings"][0])

    def get_by_ids(self, ids: list[str]) -> list[StoredChunk]:
        """The chunks with these ids that still exist, with their stored embeddings."""
        got = self.collection.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        return _chunks(got["ids"], got["documents"], got["metadatas"], got["embeddings"])

    def documents(self) -> list[DocumentInfo]:
        """Every document, read from Chroma (the truth; `listed_documents` is the fast copy)."""
        versions: dict[tuple[str, str], list] = {}
        for m in self._all_metadatas():
            entry = versions.setdefault((m["doc_id"], m["doc_hash"]), [0, m])
            entry[0] += 1
            entry[1] = m
        return _document_infos((d, h, n, m) for (d, h), (n, m) in versions.items())

    def head(self, n: int) -> list[tuple[str, str, dict]]:
        """(source, text, metadata) of up to n stored chunks, in storage order: a cheap sample
        (the web app's example questions), no embedding involved."""
        got = self.collection.get(limit=n, include=["documents", "metadatas"])
        return [(dict(m or {}).get("source", ""), t or "", dict(m or {})) for t, m in zip(got["documents"], got["metadatas"])]

    def read_report(self, doc_id: str) -> ReadReport | None:
        """What reading the stored document found, as recorded on its chunks."""
        got = self.collection.get(where={"doc_id": doc_id}, limit=1, include=["metadatas"])
        return ReadReport.from_metadata(got["metadatas"][0]) if got["metadatas"] else None

    def search(self, query: str, k: int = 4) -> list[SearchHit]:
        if self.count() == 0:
            return []
        results = self.vectorstore.similarity_search_with_score(query, k=k)
        return [
            SearchHit(
                rank=rank,
                score=round(1.0 - float(distance), 4),
                source=doc.metadata.get("source", ""),
                page=doc.metadata.get("page"),
                chunk_id=doc.id or "",
                text=doc.page_content,
                metadata=doc.metadata,
            )
            for rank, (doc, distance) in enumerate(results, start=1)
        ]
