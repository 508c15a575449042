"""The keyword index: BM25 over postings in one SQLite file, kept in step with the Chroma collection.

Why a second index at all: MiniLM embeddings blur exact tokens (a part number, a surname), which
BM25 finds at once; rag.retrieval fuses the two rankings.

Why SQLite: it is in Python's standard library, it is incremental (a chunk is added or removed as
it is written or deleted, never a rebuild), and it persists in one file next to the data. The
ranking is Okapi BM25 (k1 1.2, b 0.75) as FTS5's bm25() computed it, to the bit, but over postings
rag.bm25 keeps itself and prunes by per-block score bounds, so a query reads a few blocks of
postings instead of every posting of every term (FTS5's bm25() did, ~35 ms at 100,000 chunks). A
file written by the FTS5 version is converted once on opening. The file is a *derived copy*: the Chroma
collection stays the truth. Every chunk is in the index under the same id, and `sync` repairs
any difference by comparing ids only — the ids Chroma has and the index lacks are fetched (just
their text), the ids the index has and Chroma lacks are removed — so another process writing to
a Chroma server, a crash between the two writes, or an index file deleted by hand all heal
without re-reading every document. Deleted chunks are never returned in any case: retrieval reads
every hit back from Chroma.

What is indexed is the chunk's *indexed text* (title, heading path and text, see rag.context),
tokenized by `tokenize` (lowercased words and numbers minus English stopwords, "_" splitting words
as FTS5 did), and the query uses exactly the same tokens.

The file also keeps a small *catalog*: each chunk's document version (`doc_id`, `doc_hash`) and,
per version, its source, chunk count and read report. So the document list can be read from this
file alone, without importing chromadb (`rag docs list` in a fraction of a second, see
rag.store.listed_documents). It is trusted only when no write is in flight or was cut short: every
write through the store is bracketed by a marker row (`writing`), which a crash leaves behind;
then the list comes from Chroma and the repair (`sync`) brings the catalog back in step.

It also keeps one embedding per distinct *section heading* (rag.context.heading_label), for
retrieval's heading ranking: a few short texts per document, so they live here, next to the chunks
that name them, rather than in a second Chroma collection. Each chunk row records its heading label
("" for none), and a label no chunk names any more is dropped with the chunk that last named it.
The vectors are raw float32 bytes (this module does not import numpy: listing documents stays fast).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from rag.bm25 import Postings
from rag.context import heading_label

_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "a an and are as at be been but by can did do does for from had has have how i if in into is it "
    "its me my no not of on or our so such than that the their them then there these they this to "
    "was we were what when where which while who whom why will with you your".split()
)
_BATCH = 500  # rows per SQL statement batch / per Chroma fetch when syncing
#: The chunk metadata kept per document version in the catalog (besides doc_id and doc_hash).
CATALOG_KEYS = ("source", "chunk_count")
CATALOG_PREFIXES = ("read_",)


def _catalog_meta(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k in CATALOG_KEYS or k.startswith(CATALOG_PREFIXES)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def tokenize(text: str) -> list[str]:
    """Lowercased unicode words and numbers, minus a small English stopword list."""
    return [t for t in _WORD.findall(text.lower()) if t not in _STOPWORDS]


def _fts_tokens(text: str) -> list[str]:
    # FTS5's unicode61 split on "_" where \w does not: kept, so rankings stay what they were.
    return tokenize(text.replace("_", " "))


class KeywordIndex:
    """One collection's BM25 index in an SQLite file (or in memory with path None)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, timeout=30)
        with self._lock, self._db:
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS chunk (rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, "
                             "doc_id TEXT, doc_hash TEXT, heading TEXT)")
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(chunk)")}
            if "doc_id" not in columns:  # a file from before the catalog: its rows are backfilled by sync
                self._db.execute("ALTER TABLE chunk ADD COLUMN doc_id TEXT")
                self._db.execute("ALTER TABLE chunk ADD COLUMN doc_hash TEXT")
            if "heading" not in columns:  # a file from before heading vectors: NULL = not known
                self._db.execute("ALTER TABLE chunk ADD COLUMN heading TEXT")
            self._db.execute("CREATE INDEX IF NOT EXISTS chunk_version ON chunk (doc_id, doc_hash)")
            self._db.execute("CREATE INDEX IF NOT EXISTS chunk_heading ON chunk (heading)")
            # Asked on every query (catalog_complete): without it, a scan of every row (~10 ms at 100k).
            self._db.execute("CREATE INDEX IF NOT EXISTS chunk_uncatalogued ON chunk (rowid) "
                             "WHERE doc_id IS NULL OR doc_hash IS NULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS heading_vector (label TEXT PRIMARY KEY, vector BLOB NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS version (doc_id TEXT NOT NULL, doc_hash TEXT NOT NULL, "
                             "meta TEXT NOT NULL, PRIMARY KEY (doc_id, doc_hash))")
            self._db.execute("CREATE TABLE IF NOT EXISTS writing (token TEXT PRIMARY KEY, pid INTEGER, started REAL)")
            self._postings = Postings(self._db)
            self._convert_fts5()

    def _convert_fts5(self) -> None:
        """A file from the FTS5 version: its token texts become postings, its FTS5 table goes."""
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'body'").fetchone():
            return
        rows = self._db.execute("SELECT rowid, tokens FROM body").fetchall()
        for start in range(0, len(rows), _BATCH):
            self._postings.add([(rowid, tokens.split()) for rowid, tokens in rows[start : start + _BATCH]])
        self._db.execute("DROP TABLE body")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -------------------------------------------------------------------------
    def add(self, ids: list[str], texts: list[str], metadatas: list[dict] | None = None,
            heading_vectors: dict[str, bytes] | None = None) -> None:
        """Add or replace chunks (an id already present gets the new text). With the chunks'
        metadata (as stored in Chroma) the catalog learns their document versions and the chunks
        their heading labels too; `heading_vectors` (label -> float32 bytes) are stored with them."""
        metas = metadatas if metadatas is not None else [{}] * len(ids)
        with self._lock, self._db:
            replaced = self._delete(ids, collect=False)
            self._put_heading_vectors(heading_vectors or {})
            versions, docs = {}, []
            for cid, text, meta in zip(ids, texts, metas):
                version = (meta.get("doc_id"), meta.get("doc_hash"))
                rowid = self._db.execute("INSERT INTO chunk (id, doc_id, doc_hash, heading) VALUES (?, ?, ?, ?)",
                                         (cid, *version, heading_label(meta))).lastrowid
                docs.append((rowid, _fts_tokens(text)))
                if None not in version:
                    versions[version] = _catalog_meta(meta)
            self._postings.add(docs)
            self._db.executemany("INSERT OR REPLACE INTO version (doc_id, doc_hash, meta) VALUES (?, ?, ?)",
                                 [(*v, json.dumps(m, ensure_ascii=False)) for v, m in versions.items()])
            if replaced:  # the replaced rows' labels may be named by no chunk now
                self._drop_unused_heading_vectors()

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock, self._db:
            self._delete(list(ids))

    def _delete(self, ids: list[str], collect: bool = True) -> bool:
        """Delete these chunks' rows; True when there were any. With `collect`, the heading vectors
        no chunk names any more go too."""
        deleted = False
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            rows = [r for (r,) in self._db.execute(f"SELECT rowid FROM chunk WHERE id IN ({marks})", batch)]
            if rows:
                deleted = True
                marks = ",".join("?" * len(rows))
                self._postings.remove(rows)
                self._db.execute(f"DELETE FROM chunk WHERE rowid IN ({marks})", rows)
        if ids:
            self._db.execute("DELETE FROM version WHERE NOT EXISTS (SELECT 1 FROM chunk WHERE "
                             "chunk.doc_id = version.doc_id AND chunk.doc_hash = version.doc_hash)")
        if deleted and collect:
            self._drop_unused_heading_vectors()
        return deleted

    # --- heading vectors ---------------------------------------------------------------------
    def heading_vectors(self, labels: Iterable[str]) -> dict[str, bytes]:
        """The stored vectors (float32 bytes) of these heading labels; a label without one is left out."""
        labels = [label for label in dict.fromkeys(labels) if label]
        out: dict[str, bytes] = {}
        with self._lock:
            for start in range(0, len(labels), _BATCH):
                batch = labels[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                out.update(self._db.execute(f"SELECT label, vector FROM heading_vector WHERE label IN ({marks})", batch))
        return out

    def put_heading_vectors(self, vectors: dict[str, bytes]) -> None:
        """Store heading vectors (label -> float32 bytes), replacing any of the same label."""
        with self._lock, self._db:
            self._put_heading_vectors(vectors)

    def _put_heading_vectors(self, vectors: dict[str, bytes]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO heading_vector (label, vector) VALUES (?, ?)",
                             [(label, vec) for label, vec in vectors.items() if label])

    def _drop_unused_heading_vectors(self) -> None:
        """Drop the vectors of labels no chunk names any more. Not while some row's label is unknown
        (NULL: a row indexed before heading vectors existed), as its label might be any of them."""
        if self._db.execute("SELECT 1 FROM chunk WHERE heading IS NULL LIMIT 1").fetchone():
            return
        self._db.execute("DELETE FROM heading_vector WHERE NOT EXISTS "
                         "(SELECT 1 FROM chunk WHERE chunk.heading = heading_vector.label)")

    @contextmanager
    def writing(self):
        """Bracket one write to the collection and this index: a marker row is committed before
        and removed after. A marker left behind (a crash, or an error between the two writes)
        tells `catalog()` not to trust this file until a `sync` has repaired it."""
        token = uuid.uuid4().hex
        with self._lock, self._db:
            self._db.execute("INSERT INTO writing VALUES (?, ?, ?)", (token, os.getpid(), time.time()))
        yield  # an exception leaves the marker: which of the two writes happened is unknown
        with self._lock, self._db:
            self._db.execute("DELETE FROM writing WHERE token = ?", (token,))

    def has_leftover_markers(self) -> bool:
        """A write of this process was cut short (this process has nothing in flight when asked)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM writing WHERE pid = ? LIMIT 1", (os.getpid(),)).fetchone() is not None

    def _clear_leftover_markers(self) -> None:
        """After a sync: drop the markers of dead processes and this process's own (it is syncing,
        so none of its writes is in flight). Another live process's marker may be a write in flight."""
        with self._db:
            for token, pid in self._db.execute("SELECT token, pid FROM writing").fetchall():
                if pid == os.getpid() or not _alive(pid):
                    self._db.execute("DELETE FROM writing WHERE token = ?", (token,))

    def sync(self, current_ids: Iterable[str], fetch: Callable[[list[str]], dict], *, catalog: bool = False) -> tuple[int, int]:
        """Make the index hold exactly `current_ids` (the collection's ids now): ids it lacks are
        added with what `fetch(ids)` returns per id, its text or (text, chunk metadata) (a missing
        id is skipped: deleted since), ids it has beyond them are removed. With `catalog` (the
        fetch gives metadata) chunks whose document version the catalog lacks (indexed before it
        existed) are fetched again too. Returns (added, removed)."""
        wanted = set(current_ids)
        with self._lock:
            have = self.ids()
            extra = list(have - wanted)
            todo = sorted(wanted - have)
            if catalog:
                todo += sorted(self._uncatalogued() & wanted)
            self.remove(extra)
            added = 0
            for start in range(0, len(todo), _BATCH):
                got = fetch(todo[start : start + _BATCH])
                pairs = [(cid, *((v, {}) if isinstance(v, str) else v)) for cid, v in got.items()]
                self.add([p[0] for p in pairs], [p[1] for p in pairs], [p[2] or {} for p in pairs])
                added += sum(p[0] not in have for p in pairs)
            with self._lock:
                self._clear_leftover_markers()
            return added, len(extra)

    # --- reading -------------------------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM chunk").fetchone()[0]

    def ids(self) -> set[str]:
        with self._lock:
            return {cid for (cid,) in self._db.execute("SELECT id FROM chunk")}

    def _uncatalogued(self) -> set[str]:
        return {cid for (cid,) in self._db.execute("SELECT id FROM chunk WHERE doc_id IS NULL OR doc_hash IS NULL")}

    def catalog(self) -> list[tuple[str, str, int, dict]] | None:
        """(doc_id, doc_hash, chunks stored, catalog metadata) per document version, or None when
        this file cannot be trusted for it: a write is in flight or was cut short, or some chunk's
        version is unknown (indexed before the catalog existed)."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM writing LIMIT 1").fetchone():
                return None
            if self._db.execute("SELECT 1 FROM chunk WHERE doc_id IS NULL OR doc_hash IS NULL LIMIT 1").fetchone():
                return None
            rows = self._db.execute(
                "SELECT chunk.doc_id, chunk.doc_hash, count(*), version.meta FROM chunk LEFT JOIN version "
                "ON version.doc_id = chunk.doc_id AND version.doc_hash = chunk.doc_hash "
                "GROUP BY chunk.doc_id, chunk.doc_hash ORDER BY max(chunk.rowid)"
            ).fetchall()
        if any(meta is None for *_, meta in rows):
            return None
        return [(doc_id, doc_hash, n, json.loads(meta)) for doc_id, doc_hash, n, meta in rows]

    def catalog_complete(self) -> bool:
        """Every chunk's document version is known (false for a file made before the catalog)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM chunk WHERE doc_id IS NULL OR doc_hash IS NULL LIMIT 1").fetchone() is None

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """The top-n chunks sharing at least one query term, best first, as (id, BM25 score > 0);
        equal scores: the chunk indexed earlier first. Terms in over half the chunks are left out
        (FTS5's bm25() gave them an idf of 1e-6: they rank nothing)."""
        terms = list(dict.fromkeys(_fts_tokens(query)))
        if not terms or n < 1:
            return []
        with self._lock:
            self._db.execute("BEGIN")  # one snapshot: another process may be writing
            try:
                found = self._postings.search(terms, n)
                names = dict(self._rows_to_ids([rowid for rowid, _ in found]))
            finally:
                self._db.rollback()
        return [(names[rowid], score) for rowid, score in found if rowid in names]

    def _rows_to_ids(self, rowids: list[int]):
        for start in range(0, len(rowids), _BATCH):
            batch = rowids[start : start + _BATCH]
            yield from self._db.execute(f"SELECT rowid, id FROM chunk WHERE rowid IN ({','.join('?' * len(batch))})", batch)
