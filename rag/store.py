"""The Chroma store: embedded in DATA_DIR/chroma, or a Chroma server when RAG_CHROMA_URL is set.

Each chunk's metadata carries `doc_id`, `doc_hash` (the version of the file it came from) and
`chunk_count` (how many chunks that version has). That is all the bookkeeping: a version is
complete when that many chunks with its hash are stored, so the store itself says what an
interrupted ingest left behind, with no second database to fall out of step with it.

This module is the only one that talks to Chroma: every query, read, write and collection
listing goes through `DocumentStore` or the collection functions below.

Listing documents need not import chromadb at all (half a second of `rag docs list`): the keyword
index file keeps a catalog of document versions in step with every write made here, and a small
`collections.json` next to it maps collection names to their index files (`listed_documents`).

The collection records the embedding model and dimension it was built with; opening it with
another model is refused with a message naming both, instead of Chroma's bare
"dimension mismatch" or, worse, silently meaningless search results with a same-size model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlparse

from rag.context import heading_label, indexed_text
from rag.errors import CollectionNotFoundError, ConfigError, EmbeddingMismatchError, one_line
from rag.keyword import KeywordIndex
from rag.schema import DocumentInfo, ReadReport, SearchHit
from rag.settings import Settings

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from rag.embeddings import Embedder

PAGE = 5000  # rows per Chroma get() when scanning a whole collection
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


def make_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    url = urlparse(settings.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"RAG_CHROMA_URL={settings.chroma_url!r} is not an http(s)://host:port URL")
    try:
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    except Exception as exc:
        raise _server_error(settings, exc) from None


def _server_error(settings: Settings, exc: Exception) -> ConfigError:
    """One line naming RAG_CHROMA_URL, whatever the server sent (a web server's 404 page is HTML)."""
    text = re.sub(r"<[^>]*>", " ", str(exc))
    detail = one_line(text) if text.strip() else type(exc).__name__
    return ConfigError(f"cannot reach the Chroma server at RAG_CHROMA_URL={settings.chroma_url}: {detail}")


def collection_names(settings: Settings) -> list[str]:
    """Every collection in the configured Chroma, sorted."""
    return sorted(getattr(c, "name", c) for c in make_client(settings).list_collections())


def collection_metadata(settings: Settings, name: str) -> dict:
    """A collection's metadata (model, dimension, and whatever the app recorded)."""
    return dict(make_client(settings).get_collection(name).metadata or {})


def delete_collection(settings: Settings, name: str) -> None:
    """Delete a collection and its keyword index file."""
    client = make_client(settings)
    collection_id = client.get_collection(name).id
    _record_collection(settings, name, None)
    client.delete_collection(name)
    path = keyword_index_path(settings, collection_id)
    for file in path.parent.glob(path.name + "*"):
        file.unlink(missing_ok=True)


def open_store(settings: Settings, embedder: "Embedder | None", *, create: bool = True) -> "DocumentStore":
    """Open (or with `create`, create) the configured collection, checking its embedding model.

    With `embedder=None` the store opens for listing and deleting only (no model loaded: `rag docs
    list` answers in a second); searching or adding through it is an error."""
    if embedder is None and create:
        raise ValueError("creating a collection needs the embedder (its model is recorded)")
    client = make_client(settings)
    name = settings.collection
    try:
        listed = client.list_collections()
        names = [getattr(c, "name", c) for c in listed]
    except Exception as exc:  # a server that went away, or answered the handshake only
        if not settings.chroma_url:
            raise
        raise _server_error(settings, exc) from None
    if name in names:
        collection = client.get_collection(name)
        if embedder is not None:
            _check_model(collection, embedder, settings)
    elif create:
        collection = client.create_collection(
            name,
            metadata={
                "hnsw:space": "cosine",
                "embedding_model": embedder.name,
                "embedding_dim": embedder.dimension,
            },
        )
    else:
        known = ", ".join(sorted(names)) or "none yet"
        raise CollectionNotFoundError(
            f"collection {name!r} does not exist (collections: {known}). "
            f"Ingest documents first: rag ingest PATH --collection {name}"
        )
    path = keyword_index_path(settings, collection.id)
    _remove_orphan_indexes(path.parent, {str(getattr(c, "id", "")) for c in listed} | {str(collection.id)})
    keyword = KeywordIndex(path)
    _record_collection(settings, name, str(collection.id))
    store = DocumentStore(client, collection, embedder, keyword, recheck_seconds=RECHECK_SECONDS if settings.chroma_url else None)
    if not settings.chroma_url:  # any write to the embedded Chroma, through any handle, changes these
        store.chroma_files = [settings.chroma_dir / "chroma.sqlite3", settings.chroma_dir / "chroma.sqlite3-wal"]
    return store


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def keyword_index_path(settings: Settings, collection_id) -> Path:
    """DATA_DIR/keyword/<where>/<collection uuid>.sqlite3: one file per Chroma collection (a
    collection deleted and made again under the same name gets a new, empty file); <where> is
    "local" for the embedded store, else a digest of RAG_CHROMA_URL."""
    where = "local" if not settings.chroma_url else hashlib.sha256(settings.chroma_url.encode()).hexdigest()[:12]
    return settings.keyword_dir / where / f"{collection_id}.sqlite3"


def _names_path(settings: Settings) -> Path:
    return keyword_index_path(settings, "x").parent / "collections.json"


def _read_names(settings: Settings) -> dict[str, str]:
    try:
        names = json.loads(_names_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return names if isinstance(names, dict) else {}


def _record_collection(settings: Settings, name: str, collection_id: str | None) -> None:
    """Remember which index file is `name`'s (None: forget it), for `listed_documents`. Best
    effort: a lost update only sends the next listing the slow way, which records it again."""
    names = _read_names(settings)
    if names.get(name) == collection_id:
        return
    if collection_id is None:
        names.pop(name, None)
    else:
        names[name] = collection_id
    path = _names_path(settings)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(names, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)


def listed_documents(settings: Settings) -> "tuple[str, list[DocumentInfo]] | None":
    """(collection name, its documents) read from our own keyword index file, without importing
    chromadb; None when that file cannot answer for the collection (a Chroma server, which other
    machines write to; no record of the collection; a write in flight or cut short; a file from
    before the catalog). Then `open_store(...).documents()` asks Chroma, the truth."""
    if settings.chroma_url or not settings.chroma_dir.is_dir():
        return None
    collection_id = _read_names(settings).get(settings.collection)
    if not collection_id:
        return None
    path = keyword_index_path(settings, collection_id)
    if not path.is_file():
        return None
    try:
        index = KeywordIndex(path)
        try:
            versions = index.catalog()
        finally:
            index.close()
        return None if versions is None else (settings.collection, _document_infos(versions))
    except (sqlite3.Error, OSError, ValueError, KeyError, TypeError):  # unreadable or damaged: ask Chroma
        return None


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


def _remove_orphan_indexes(folder: Path, live_ids: set[str]) -> None:
    """Delete the keyword index files of collections that no longer exist (a hosted demo's visitor
    collections come and go). Best effort: a file in use elsewhere is only unlinked, and an index
    file missing is rebuilt from its collection."""
    if not folder.is_dir():
        return
    for path in folder.glob("*.sqlite3*"):
        if path.name.split(".sqlite3")[0] not in live_ids:
            path.unlink(missing_ok=True)


def _check_model(collection, embedder: "Embedder", settings: Settings) -> None:
    meta = collection.metadata or {}
    model, dim = meta.get("embedding_model"), meta.get("embedding_dim")
    if model == embedder.name and dim == embedder.dimension:
        return
    if model is None and collection.count() == 0:
        collection.modify(metadata={**meta, "embedding_model": embedder.name, "embedding_dim": embedder.dimension})
        return
    raise EmbeddingMismatchError(
        f"collection {collection.name!r} was indexed with embedding model {model or 'unknown'} "
        f"(dimension {dim or 'unknown'}), but RAG_EMBEDDING_MODEL is {embedder.name} "
        f"(dimension {embedder.dimension}). Either set RAG_EMBEDDING_MODEL={model} again, or "
        f"re-index with the new model into a fresh collection: "
        f"rag ingest PATH --collection NEW_NAME (or `rag docs clear --collection {collection.name}` "
        "and ingest again)."
    )


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
        meta = {k: v for k, v in self.metadata.items() if k != "hnsw:space"}
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
            with self.keyword.writing():
                self.collection.upsert(
                    ids=batch_ids, embeddings=vectors, documents=[c.page_content for c in batch], metadatas=metadatas
                )
                # after Chroma: the index never holds more
                self.keyword.add(batch_ids, texts, metadatas, heading_vectors=headings)
            self.timings["embed"] += t1 - t0
            self.timings["write"] += time.perf_counter() - t1

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
