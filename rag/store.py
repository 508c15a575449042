"""The Chroma store: embedded in DATA_DIR/chroma, or a Chroma server when RAG_CHROMA_URL is set.

Each chunk's metadata carries `doc_id`, `doc_hash` (the version of the file it came from) and
`chunk_count` (how many chunks that version has). That is all the bookkeeping: a version is
complete when that many chunks with its hash are stored, so the store itself says what an
interrupted ingest left behind, with no second database to fall out of step with it.

This module is the only one that talks to Chroma: every query, read, write and collection
listing goes through `DocumentStore` or the collection functions below.

The collection records the embedding model and dimension it was built with; opening it with
another model is refused with a message naming both, instead of Chroma's bare
"dimension mismatch" or, worse, silently meaningless search results with a same-size model.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

from langchain_core.documents import Document

from rag.embeddings import Embedder
from rag.errors import CollectionNotFoundError, ConfigError, EmbeddingMismatchError, one_line
from rag.schema import DocumentInfo, ReadReport, SearchHit
from rag.settings import Settings

PAGE = 5000  # rows per Chroma get() when scanning a whole collection


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
    make_client(settings).delete_collection(name)


def open_store(settings: Settings, embedder: Embedder, *, create: bool = True) -> "DocumentStore":
    """Open (or with `create`, create) the configured collection, checking its embedding model."""
    client = make_client(settings)
    name = settings.collection
    try:
        names = [getattr(c, "name", c) for c in client.list_collections()]
    except Exception as exc:  # a server that went away, or answered the handshake only
        if not settings.chroma_url:
            raise
        raise _server_error(settings, exc) from None
    if name in names:
        collection = client.get_collection(name)
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
    return DocumentStore(client, collection, embedder)


def _check_model(collection, embedder: Embedder, settings: Settings) -> None:
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

    def __init__(self, client, collection, embedder: Embedder):
        from langchain_chroma import Chroma

        self.client = client
        self.collection = collection
        self.embedder = embedder
        self.revision = 0  # bumped by every write through this object (see rag.retrieval.keyword_index)
        self.vectorstore = Chroma(
            client=client,
            collection_name=collection.name,
            embedding_function=embedder.embeddings,
            create_collection_if_not_exists=False,
        )

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

    def add_chunks(self, chunks: list[Document], ids: list[str], batch_size: int = 256) -> None:
        """Embed and upsert; ids are stable, so a rerun after a crash overwrites, never duplicates."""
        try:
            for start in range(0, len(chunks), batch_size):
                batch = chunks[start : start + batch_size]
                self.vectorstore.add_texts(
                    texts=[c.page_content for c in batch],
                    metadatas=[c.metadata for c in batch],
                    ids=ids[start : start + batch_size],
                )
        finally:
            self.revision += 1  # after the write: a keyword index built meanwhile is rebuilt

    def delete_other_versions(self, doc_id: str, keep_hash: str) -> None:
        try:
            self.collection.delete(where={"$and": [{"doc_id": doc_id}, {"doc_hash": {"$ne": keep_hash}}]})
        finally:
            self.revision += 1

    def delete_document(self, doc_id: str) -> int:
        try:
            n = len(self.collection.get(where={"doc_id": doc_id}, include=[])["ids"])
            if n:
                self.collection.delete(where={"doc_id": doc_id})
            return n
        finally:
            self.revision += 1

    def clear(self) -> int:
        try:
            n = self.count()
            for ids in self._id_pages():
                self.collection.delete(ids=ids)
            return n
        finally:
            self.revision += 1

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
        chunks: Counter = Counter()
        sources: dict[str, str] = {}
        reads: dict[str, ReadReport | None] = {}
        versions: dict[str, Counter] = defaultdict(Counter)
        expected: dict[tuple[str, str], int] = {}
        for m in self._all_metadatas():
            doc_id = m["doc_id"]
            chunks[doc_id] += 1
            sources[doc_id] = m["source"]
            reads[doc_id] = ReadReport.from_metadata(m)
            versions[doc_id][m["doc_hash"]] += 1
            expected[doc_id, m["doc_hash"]] = m["chunk_count"]
        infos = [
            DocumentInfo(
                doc_id=doc_id,
                source=sources[doc_id],
                chunks=n,
                complete=len(versions[doc_id]) == 1
                and all(expected[doc_id, h] == c for h, c in versions[doc_id].items()),
                read=reads[doc_id],
            )
            for doc_id, n in chunks.items()
        ]
        return sorted(infos, key=lambda d: d.source)

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
