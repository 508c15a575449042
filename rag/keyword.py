"""The keyword index: SQLite FTS5, ranked by its bm25(), kept in step with the Chroma collection.

Why a second index at all: MiniLM embeddings blur exact tokens (a part number, a surname), which
BM25 finds at once; rag.retrieval fuses the two rankings.

Why SQLite FTS5: it is in Python's standard library, it is incremental (a chunk is added or
removed as it is written or deleted, never a rebuild), it persists in one file next to the data,
and its bm25() is Okapi BM25 (k1 1.2, b 0.75). The file is a *derived copy*: the Chroma
collection stays the truth. Every chunk is in the index under the same id, and `sync` repairs
any difference by comparing ids only — the ids Chroma has and the index lacks are fetched (just
their text), the ids the index has and Chroma lacks are removed — so another process writing to
a Chroma server, a crash between the two writes, or an index file deleted by hand all heal
without re-reading every document. Deleted chunks are never returned in any case: retrieval reads
every hit back from Chroma.

What is indexed is the chunk's *indexed text* (title, heading path and text, see rag.context),
tokenized by `tokenize` (lowercased words and numbers minus English stopwords) and stored as
space-separated tokens, so the index and the query use exactly the same tokens.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterable

_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "a an and are as at be been but by can did do does for from had has have how i if in into is it "
    "its me my no not of on or our so such than that the their them then there these they this to "
    "was we were what when where which while who whom why will with you your".split()
)
_BATCH = 500  # rows per SQL statement batch / per Chroma fetch when syncing


def tokenize(text: str) -> list[str]:
    """Lowercased unicode words and numbers, minus a small English stopword list."""
    return [t for t in _WORD.findall(text.lower()) if t not in _STOPWORDS]


def _fts_tokens(text: str) -> str:
    # FTS5's unicode61 splits on "_" where \w does not: keep the two tokenizations identical.
    return " ".join(tokenize(text.replace("_", " ")))


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
            self._db.execute("CREATE TABLE IF NOT EXISTS chunk (rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL)")
            self._db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS body USING fts5(tokens, tokenize='unicode61 remove_diacritics 0')"
            )
            self._db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, body, row)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -------------------------------------------------------------------------
    def add(self, ids: list[str], texts: list[str]) -> None:
        """Add or replace chunks (an id already present gets the new text)."""
        with self._lock, self._db:
            self._delete(ids)
            for start in range(0, len(ids), _BATCH):
                for cid, text in zip(ids[start : start + _BATCH], texts[start : start + _BATCH]):
                    rowid = self._db.execute("INSERT INTO chunk (id) VALUES (?)", (cid,)).lastrowid
                    self._db.execute("INSERT INTO body (rowid, tokens) VALUES (?, ?)", (rowid, _fts_tokens(text)))

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock, self._db:
            self._delete(list(ids))

    def _delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            rows = [r for (r,) in self._db.execute(f"SELECT rowid FROM chunk WHERE id IN ({marks})", batch)]
            if rows:
                marks = ",".join("?" * len(rows))
                self._db.execute(f"DELETE FROM body WHERE rowid IN ({marks})", rows)
                self._db.execute(f"DELETE FROM chunk WHERE rowid IN ({marks})", rows)

    def sync(self, current_ids: Iterable[str], fetch_texts: Callable[[list[str]], dict[str, str]]) -> tuple[int, int]:
        """Make the index hold exactly `current_ids` (the collection's ids now): ids it lacks are
        added with the text `fetch_texts(ids)` returns (a missing id is skipped: deleted since),
        ids it has beyond them are removed. Returns (added, removed)."""
        wanted = set(current_ids)
        with self._lock:
            have = self.ids()
            extra = list(have - wanted)
            missing = sorted(wanted - have)
            self.remove(extra)
            added = 0
            for start in range(0, len(missing), _BATCH):
                texts = fetch_texts(missing[start : start + _BATCH])
                self.add(list(texts), list(texts.values()))
                added += len(texts)
            return added, len(extra)

    # --- reading -------------------------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM chunk").fetchone()[0]

    def ids(self) -> set[str]:
        with self._lock:
            return {cid for (cid,) in self._db.execute("SELECT id FROM chunk")}

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """The top-n chunks sharing at least one query term, best first, as (id, BM25 score > 0)."""
        terms = list(dict.fromkeys(_fts_tokens(query).split()))
        if not terms or n < 1:
            return []
        with self._lock:
            terms = self._useful(terms)
            if not terms:
                return []
            match = " OR ".join(f'"{t}"' for t in terms)
            rows = self._db.execute(
                "SELECT chunk.id, bm25(body) FROM body JOIN chunk ON chunk.rowid = body.rowid "
                "WHERE body MATCH ? ORDER BY bm25(body) LIMIT ?",
                (match, n),
            ).fetchall()
        return [(cid, -score) for cid, score in rows]

    def _useful(self, terms: list[str]) -> list[str]:
        """The terms in fewer than half the chunks. FTS5's bm25() gives a term in more than half
        an idf of 1e-6, so such a term changes no ranking, but scoring its long posting list is
        most of a query's time on a large collection."""
        total = self.count()
        marks = ",".join("?" * len(terms))
        df = dict(self._db.execute(f"SELECT term, doc FROM vocab WHERE term IN ({marks})", terms).fetchall())
        return [t for t in terms if t in df and df[t] <= total / 2]
