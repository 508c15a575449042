"""The keyword ranking as it was before issue 30: SQLite FTS5 ranked by its bm25(), kept only as
the reference the new rag.bm25 search is measured and checked against (bench/query_phases.py
--keyword fts5, bench/keyword_equality.py, tests/test_keyword.py).

Same tokens as rag.keyword (its tokenizer, "_" splitting words), same query (the distinct terms,
those in more than half the chunks left out), `ORDER BY bm25(body) LIMIT n` as the old
KeywordIndex.search ran it, chunk ids in a side table like the old `chunk` table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rag.keyword import _fts_tokens


class FTS5Index:
    """One FTS5 table of token texts, rowid = the order chunks were added in."""

    def __init__(self, path: Path | None = None):
        self.db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        with self.db:
            self.db.execute("PRAGMA journal_mode=WAL") if path else None
            self.db.execute("CREATE TABLE IF NOT EXISTS chunk (rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL)")
            self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS body USING fts5(tokens, "
                            "tokenize='unicode61 remove_diacritics 0')")
            self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, body, row)")

    def add(self, ids: list[str], texts: list[str]) -> None:
        with self.db:
            self._remove(ids)
            for cid, text in zip(ids, texts):
                rowid = self.db.execute("INSERT INTO chunk (id) VALUES (?)", (cid,)).lastrowid
                self.db.execute("INSERT INTO body (rowid, tokens) VALUES (?, ?)", (rowid, " ".join(_fts_tokens(text))))

    def remove(self, ids: list[str]) -> None:
        with self.db:
            self._remove(ids)

    def _remove(self, ids: list[str]) -> None:
        for cid in ids:
            row = self.db.execute("SELECT rowid FROM chunk WHERE id = ?", (cid,)).fetchone()
            if row:
                self.db.execute("DELETE FROM body WHERE rowid = ?", row)
                self.db.execute("DELETE FROM chunk WHERE rowid = ?", row)

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        terms = list(dict.fromkeys(_fts_tokens(query)))
        if not terms or n < 1:
            return []
        total = self.db.execute("SELECT count(*) FROM chunk").fetchone()[0]
        marks = ",".join("?" * len(terms))
        df = dict(self.db.execute(f"SELECT term, doc FROM vocab WHERE term IN ({marks})", terms).fetchall())
        terms = [t for t in terms if t in df and df[t] <= total / 2]
        if not terms:
            return []
        rows = self.db.execute(
            "SELECT chunk.id, bm25(body) FROM body JOIN chunk ON chunk.rowid = body.rowid "
            "WHERE body MATCH ? ORDER BY bm25(body) LIMIT ?",
            (" OR ".join(f'"{t}"' for t in terms), n),
        ).fetchall()
        return [(cid, -score) for cid, score in rows]
