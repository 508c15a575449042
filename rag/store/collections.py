"""The Chroma client and the collections: opening one (checking its model, repairing after a killed
writer), listing, deleting, and the small registry that lets `rag docs list` skip chromadb."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from rag.errors import CollectionNotFoundError, ConfigError, EmbeddingMismatchError, one_line
from rag.keyword import KeywordIndex
from rag.schema import DocumentInfo
from rag.settings import Settings
from rag.store.document_store import RECHECK_SECONDS, SYNC_THRESHOLD, DocumentStore, _document_infos

if TYPE_CHECKING:
    from rag.embeddings import Embedder

_log = logging.getLogger(__name__)


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
        if not settings.chroma_url:
            _persist_every_write(collection)
    elif create:
        collection = client.create_collection(
            name,
            metadata={
                "hnsw:space": "cosine",
                "embedding_model": embedder.name,
                "embedding_dim": embedder.dimension,
                **({} if settings.chroma_url else {"hnsw:sync_threshold": SYNC_THRESHOLD}),
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
    if not settings.chroma_url and (dead := _dead_writers(path)):
        # A process that wrote here was killed: check the vector index before anything searches.
        from rag.integrity import after_unclean_stop

        after_unclean_stop(store, dead)
    return store


def _persist_every_write(collection) -> None:
    """Have an older embedded collection write its vector index at every write (SYNC_THRESHOLD)."""
    try:
        current = (collection.configuration or {}).get("hnsw", {}).get("sync_threshold")
        if current is not None and current > SYNC_THRESHOLD:
            collection.modify(configuration={"hnsw": {"sync_threshold": SYNC_THRESHOLD}})
    except Exception as exc:  # an older Chroma without this setting: the check still repairs
        _log.info("cannot set the vector index's sync threshold: %s", one_line(str(exc)))




def _dead_writers(index_path: Path) -> list[Path]:
    """Markers of processes that wrote to this collection and ended without closing (kill -9)."""
    from rag.keyword import _alive

    out = []
    for marker in index_path.parent.glob(index_path.name + ".writer-*"):
        pid = marker.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            out.append(marker)
    return out


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


