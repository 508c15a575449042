"""What the web app does, with no Gradio in it: collections, uploads, per-visitor isolation, answers.

Private mode (the default, one user on their own machine): the visitor picks or creates a
collection; uploads, deletes and questions all use it.

Public mode (RAG_PUBLIC=true, a hosted demo): each visitor's uploads go to a collection of their
own, `visitor-<hash of the session>`, that nobody else's questions read; questions search that
plus the configured collection, which the owner filled beforehand and visitors can only read.
A visitor collection idle longer than RAG_SESSION_TTL_MINUTES is deleted with its uploaded files;
its last-seen time is kept in the collection's metadata, so a restart does not orphan it.

This module is a face of the library, like rag/app/cli.py, so it may import ingest/.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import threading
import time
import unicodedata
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from ingest import ocr
from ingest.pipeline import Ingestor
from ingest.pipeline import document_id as ingest_document_id
from rag.errors import ConfigError, RagError
from rag.app.quota import OcrMeter, QuotaExceeded, VisitorQuotas
from rag.schema import DocumentInfo, FileResult
from rag.settings import Settings, check_collection_name
from rag.store import DocumentStore, collection_metadata, collection_names, delete_collection, open_store

VISITOR_PREFIX = "visitor-"
_SWEEP_EVERY = 60.0  # seconds between sweeps of idle visitor collections
_LLMS_KEPT = 4  # chat models kept for reuse (one per distinct LLM settings; local weights are shared)
#: The settings that make one chat model differ from another.
LLM_FIELDS = (
    "llm", "local_model", "local_runtime", "openai_model", "openai_api_key", "openai_base_url", "temperature",
    "max_answer_tokens", "context_window", "llm_timeout",
)


def safe_filename(name: str, limit: int = 120) -> str:
    """A harmless file name from whatever a browser sent: no folders (`../`, absolute paths),
    no control characters, bounded length with the extension kept."""
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = name, ""
    ext = f".{ext}" if ext else ""
    stem = stem.encode()[: max(1, limit - len(ext.encode()))].decode("utf-8", "ignore").rstrip(" .") or "upload"  # bytes: file systems cap names at 255 bytes
    return stem + ext


def _llm_key(settings: Settings) -> tuple:
    values = (getattr(settings, name) for name in LLM_FIELDS)
    return tuple(v.get_secret_value() if hasattr(v, "get_secret_value") else v for v in values)


def visitor_collection(session: str) -> str:
    return VISITOR_PREFIX + hashlib.sha256(session.encode()).hexdigest()[:16]


class Workspace:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._stores: dict[str, DocumentStore] = {}
        self._lock = threading.RLock()
        self._file_locks: dict[Path, threading.Lock] = {}
        self._last_sweep = 0.0
        self._embedder = None
        self._llms: OrderedDict[tuple, object] = OrderedDict()
        self.quotas = VisitorQuotas(settings)  # public mode: per client address
        from rag.llm.local import LOADED

        LOADED.size = settings.max_loaded_models  # RAG_MAX_LOADED_MODELS: llama.cpp models kept in memory

    # --- stores ----------------------------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            from rag.embeddings import make_embedder

            self._embedder = make_embedder(self.settings)
        return self._embedder

    def store(self, name: str, create: bool = True) -> DocumentStore | None:
        """One cached store per collection (its keyword index lives as long as it does)."""
        with self._lock:
            if name not in self._stores:
                try:  # model_copy does not validate: a name from a request is checked here
                    check_collection_name(name)
                except ValueError as exc:
                    if not create:
                        return None
                    raise ConfigError(str(exc)) from None
                settings = self.settings.model_copy(update={"collection": name})
                try:
                    self._stores[name] = open_store(settings, self.embedder, create=create)
                except RagError:
                    if create:
                        raise
                    return None
            return self._stores[name]

    def collections(self) -> list[str]:
        """The collections a visitor may pick (never another visitor's)."""
        names = set(collection_names(self.settings))
        names.add(self.settings.collection)
        return sorted(n for n in names if not n.startswith(VISITOR_PREFIX))

    def writable(self, session: str, chosen: str | None) -> str:
        if self.settings.public:
            return visitor_collection(session)
        return chosen or self.settings.collection

    def readable(self, session: str, chosen: str | None) -> list[str]:
        if self.settings.public:
            return [self.settings.collection, visitor_collection(session)]
        return [chosen or self.settings.collection]

    # --- documents -------------------------------------------------------------------------
    def upload(
        self,
        files: list[tuple[Path, str]],
        session: str,
        chosen: str | None,
        progress: Callable[[int, int, str], None] | None = None,
        client: str | None = None,
    ) -> list[FileResult]:
        """Ingest (temporary path, name the browser gave) pairs into the writable collection.
        In public mode the upload is charged to `client` (an address) first, or refused whole."""
        self.touch(session)
        limit = self.settings.max_upload_files
        if len(files) > limit:
            return [FileResult(safe_filename(n), "failed", error=f"more than {limit} files in one upload (RAG_MAX_UPLOAD_FILES)") for _, n in files]
        if self.settings.public:
            try:  # files here; their bytes were charged when they reached the server (rag/app/upload_guard.py)
                self.quotas.admit_upload(client or session, len(files), 0)
            except QuotaExceeded as exc:
                return [FileResult(safe_filename(n), "failed", error=str(exc)) for _, n in files]
        name = self.writable(session, chosen)
        store = self.store(name)
        folder = (self.settings.data_dir / "uploads" / name).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        ingestor = Ingestor(store, self.settings)
        meter = OcrMeter(self.quotas, client or session) if self.settings.public else None
        results = []
        for i, (tmp, original) in enumerate(files):
            filename = safe_filename(original or Path(tmp).name)
            if progress:
                progress(i, len(files), filename)
            dest = folder / filename
            with self._file_lock(dest):  # the same name uploaded twice at once: one after the other
                try:
                    shutil.copyfile(tmp, dest)
                except OSError as exc:
                    results.append(FileResult(filename, "failed", error=f"could not store the upload: {exc.strerror or exc}"))
                    continue
                with ocr.metered(meter) if meter else contextlib.nullcontext():  # the visitor's OCR pages and seconds
                    result = ingestor.ingest_file(dest, source=filename)
                if result.status == "failed" and not store.versions(ingest_document_id(dest)):
                    dest.unlink(missing_ok=True)  # keep no copy of a file that was never stored
            results.append(result)
        if progress:
            progress(len(files), len(files), "")
        self.touch(session)  # a visitor collection made by this upload gets its first last_seen
        return results

    def _file_lock(self, dest: Path) -> threading.Lock:
        """One lock per uploaded file's path. Without it, two uploads of one name into one collection
        overwrote the copy while the other read it, and each deleted the other's version as "old":
        the document was lost though both reported added."""
        with self._lock:
            return self._file_locks.setdefault(dest, threading.Lock())

    def documents(self, session: str, chosen: str | None) -> list[tuple[DocumentInfo, bool]]:
        """(document, can this visitor delete it) for everything their questions can read."""
        out = []
        writable = self.writable(session, chosen)
        for name in dict.fromkeys(self.readable(session, chosen)):
            store = self.store(name, create=False)
            if store is not None:
                out.extend((doc, name == writable) for doc in store.documents())
        return out

    def delete(self, session: str, chosen: str | None, source: str) -> int:
        store = self.store(self.writable(session, chosen), create=False)
        if store is None:
            return 0
        removed = 0
        for doc in store.documents():
            if doc.source == source:
                removed += store.delete_document(doc.doc_id)
        if removed and source == safe_filename(source):  # an upload (its source is its file name)
            copy = self.settings.data_dir / "uploads" / store.name / source
            with self._file_lock(copy.resolve()):
                copy.unlink(missing_ok=True)
        return removed

    # --- answering -------------------------------------------------------------------------
    def llm(self, settings: Settings):
        """The chat model for these settings, made once and reused by later turns (a few are kept,
        least recently used dropped; the local weights themselves live in rag.llm.local.LOADED,
        which holds at most two models)."""
        from rag.llm import make_llm

        key = _llm_key(settings)
        with self._lock:
            model = self._llms.get(key)
            if model is not None:
                self._llms.move_to_end(key)
                return model
        model = make_llm(settings)  # outside the lock: loading a model takes seconds
        with self._lock:
            self._llms[key] = model
            self._llms.move_to_end(key)
            while len(self._llms) > _LLMS_KEPT:
                self._llms.popitem(last=False)
        return model

    def chain(self, session: str, chosen: str | None, overrides: dict | None = None):
        from rag.answer import build

        self.touch(session)
        settings = self.settings.model_copy(update=overrides or {})
        stores = [
            store
            for name in dict.fromkeys(self.readable(session, chosen))
            if (store := self.store(name, create=False)) is not None
        ]
        return build(settings, stores=stores, llm=self.llm(settings))

    # --- visitor collections ---------------------------------------------------------------
    def touch(self, session: str) -> None:
        """Record activity of a visitor (public mode) and sweep idle ones now and then."""
        if not self.settings.public:
            return
        store = self.store(visitor_collection(session), create=False)
        now = time.time()
        if store is not None and now - store.metadata.get("last_seen", 0) > 30:
            store.set_metadata(last_seen=now)
        if now - self._last_sweep > _SWEEP_EVERY:
            self.sweep(now)

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete visitor collections idle for longer than the TTL, and their uploaded files."""
        now = time.time() if now is None else now
        self._last_sweep = now
        ttl = self.settings.session_ttl_minutes * 60
        removed = []
        for name in collection_names(self.settings):
            if not name.startswith(VISITOR_PREFIX):
                continue
            meta = collection_metadata(self.settings, name)
            if now - meta.get("last_seen", meta.get("created", now)) > ttl:
                delete_collection(self.settings, name)
                with self._lock:
                    self._stores.pop(name, None)
                shutil.rmtree(self.settings.data_dir / "uploads" / name, ignore_errors=True)
                removed.append(name)
        return removed
