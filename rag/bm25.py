"""Exact BM25 top-n over postings kept in SQLite tables, scored with numpy.

Why not FTS5's bm25() any more: to rank, FTS5 reads every posting of every query term twice
(once to count the term's documents for its idf, once to score, calling bm25() back per matching
row through SQL), and sorts all matches: ~35 ms of a 66 ms query at 100,000 chunks, 140 ms p50
on distinct text under load (bench/README.md). Here each query term's postings are read once, as
a few packed blobs, and scored in one vectorised pass.

Layout (tables in the keyword index's SQLite file, written in the caller's transaction):
- `bm25_term`: term -> id.
- `bm25_posting`: one row per (term, block), a block being 1,024 consecutive rowids: the offsets
  of the block's chunks that hold the term (uint16 bytes) and the term's count in each (uint8,
  uint16 or uint32 bytes, the narrowest that fits the row's largest count, kept beside it). A
  term's document frequency is the sum of its rows' counts, read with them at query time (so a
  write updates no counter per term).
- `bm25_block`: each block's chunk lengths in tokens (uint32 per offset, 0 = no chunk).
- `bm25_doc`: each chunk's distinct term ids (uint32 bytes), so a removal touches only its own postings.
- `bm25_stats`: the number of chunks and of tokens (for the average length).
A write rewrites only the (term, block) rows its chunks are in: new chunks get the highest
rowids, so an ingest batch appends to the last block or two; nothing grows with the collection.

The score is FTS5's bm25() to the bit (Okapi BM25, k1 1.2, b 0.75, its idf
log((N - df + 0.5) / (df + 0.5)) floored at 1e-6, summed over the query terms in query order with
the same floating-point operations), and terms in more than half the chunks are left out as
before (their idf is the floor: they rank nothing). Equal scores go by rowid, the chunk indexed
earlier first, which is what FTS5's ORDER BY bm25() gave. The top n are picked by a partial sort.

Why no MaxScore / block-max pruning: it was built and measured (per-row largest count and
shortest length as a score bound, blocks scored best bound first until the n-th score beats the
next bound). On COVID-QA's questions at 100k chunks it scored 98 of 98 blocks (389 of 391 with
256-chunk blocks, 717 of 782 with 128): questions carry several moderately common words, each
present with a near-maximal weight in every block, so the sum of the per-term maxima stays above
the 20th score everywhere. The rounds only added overhead (38 ms against 8 ms for one pass).
"""

from __future__ import annotations

import math
import sqlite3
from array import array
from collections import defaultdict

import numpy as np

K1, B = 1.2, 0.75
MIN_IDF = 1e-6
BLOCK_BITS = 10
BLOCK = 1 << BLOCK_BITS
_BATCH = 500  # values per SQL IN list
_TF_TYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32}
_TF_CODES = {1: "B", 2: "H", 4: "I"}  # the same widths for the array module

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bm25_term (id INTEGER PRIMARY KEY, term TEXT UNIQUE NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bm25_posting (term INTEGER NOT NULL, block INTEGER NOT NULL, n INTEGER NOT NULL, "
    "max_tf INTEGER NOT NULL, offsets BLOB NOT NULL, tfs BLOB NOT NULL, "
    "PRIMARY KEY (term, block)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bm25_block (block INTEGER PRIMARY KEY, lens BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bm25_doc (rowid INTEGER PRIMARY KEY, terms BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bm25_stats (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def _chunks(values: list, size: int = _BATCH):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _marks(values) -> str:
    return ",".join("?" * len(values))


def _tf_code(top: int) -> str:
    """The array module's code of the narrowest unsigned type that holds counts up to `top`."""
    return "B" if top < 1 << 8 else "H" if top < 1 << 16 else "I"


def _tf_bytes(tfs: np.ndarray) -> bytes:
    return array(_tf_code(int(tfs.max())), tfs.tolist()).tobytes()


def _tfs(blob: bytes, n: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=_TF_TYPES[len(blob) // n])


def weight(tf, length, avgdl: float):
    """The BM25 term weight (without idf), with FTS5's operations in FTS5's order."""
    return (tf * (K1 + 1.0)) / (tf + K1 * (1 - B + B * length / avgdl))


def idf(rows: int, df: int) -> float:
    value = math.log((rows - df + 0.5) / (df + 0.5))
    return value if value > 0.0 else MIN_IDF


class Postings:
    """The postings of one keyword index, on its SQLite connection (the caller holds its lock and
    brackets writes in a transaction)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        for statement in SCHEMA:
            db.execute(statement)

    # --- statistics ---------------------------------------------------------------------------
    def stats(self) -> tuple[int, int]:
        """(chunks, tokens) indexed."""
        values = dict(self.db.execute("SELECT key, value FROM bm25_stats"))
        return values.get("rows", 0), values.get("tokens", 0)

    def _add_stats(self, rows: int, tokens: int) -> None:
        have_rows, have_tokens = self.stats()
        self.db.executemany("INSERT OR REPLACE INTO bm25_stats (key, value) VALUES (?, ?)",
                            [("rows", have_rows + rows), ("tokens", have_tokens + tokens)])

    def _lens(self, blocks) -> dict[int, np.ndarray]:
        """Each block's chunk lengths, BLOCK of them (0: no chunk, or one without tokens)."""
        out = {block: np.zeros(BLOCK, np.uint32) for block in sorted(set(blocks))}
        for batch in _chunks(list(out)):
            for block, blob in self.db.execute(f"SELECT block, lens FROM bm25_block WHERE block IN ({_marks(batch)})", batch):
                stored = np.frombuffer(blob, np.uint32)
                out[block][: len(stored)] = stored
        return out

    def _put_lens(self, lens: dict[int, np.ndarray]) -> None:
        rows, gone = [], []
        for block, arr in lens.items():
            used = np.flatnonzero(arr)
            if len(used):
                rows.append((block, arr[: used[-1] + 1].tobytes()))
            else:
                gone.append((block,))
        self.db.executemany("INSERT OR REPLACE INTO bm25_block (block, lens) VALUES (?, ?)", rows)
        self.db.executemany("DELETE FROM bm25_block WHERE block = ?", gone)

    def _stored(self, keys) -> dict[tuple[int, int], tuple]:
        """The stored rows of these (term id, block) keys: (n, max_tf, offsets, tfs)."""
        by_block = defaultdict(list)
        for tid, block in keys:
            by_block[block].append(tid)
        out = {}
        for block, tids in by_block.items():
            for batch in _chunks(tids):
                for tid, *row in self.db.execute(
                    f"SELECT term, n, max_tf, offsets, tfs FROM bm25_posting WHERE block = ? "
                    f"AND term IN ({_marks(batch)})", [block, *batch],
                ):
                    out[(tid, block)] = tuple(row)
        return out

    def _put_postings(self, rows: dict) -> None:
        """Write (term id, block) -> (offsets, counts) rows; an empty one is deleted."""
        put, gone = [], []
        for (tid, block), (offsets, tfs) in rows.items():
            if not len(offsets):
                gone.append((tid, block))
                continue
            put.append((tid, block, len(offsets), int(tfs.max()), offsets.astype(np.uint16).tobytes(), _tf_bytes(tfs)))
        self.db.executemany("INSERT OR REPLACE INTO bm25_posting (term, block, n, max_tf, offsets, tfs) "
                            "VALUES (?, ?, ?, ?, ?, ?)", put)
        self.db.executemany("DELETE FROM bm25_posting WHERE term = ? AND block = ?", gone)

    # --- writing ------------------------------------------------------------------------------
    def add(self, docs: list[tuple[int, list[str]]]) -> None:
        """Index chunks given as (rowid, tokens); the rowids are new (not indexed now)."""
        if not docs:
            return
        docs = sorted(docs)
        ids = self._term_ids({t for _, tokens in docs for t in tokens})
        rowids = np.array([r for r, _ in docs], np.int64)
        lengths = np.array([len(tokens) for _, tokens in docs], np.int64)
        tid = np.array([ids[t] for _, tokens in docs for t in tokens], np.int64)
        row = np.repeat(rowids, lengths)
        # postings: one per (term, chunk) with its count, sorted by term, then rowid
        order = np.lexsort((row, tid))
        tid, row = tid[order], row[order]
        first = np.ones(len(tid), bool)
        first[1:] = (tid[1:] != tid[:-1]) | (row[1:] != row[:-1])
        starts = np.flatnonzero(first)
        tid, row, tf = tid[starts], row[starts], np.diff(np.append(starts, len(order)))
        block, offset = row >> BLOCK_BITS, (row & (BLOCK - 1)).astype(np.uint16)

        lens = self._lens((rowids >> BLOCK_BITS).tolist())
        fresh = {b for b, arr in lens.items() if not arr.any()}  # no chunk yet: no rows stored
        for r, n in zip(rowids.tolist(), lengths.tolist()):
            lens[r >> BLOCK_BITS][r & (BLOCK - 1)] = n
        self._put_lens(lens)
        # each chunk's distinct term ids, for its removal
        by_row = np.argsort(row, kind="stable")
        terms_bytes = tid[by_row].astype(np.uint32).tobytes()
        ends = np.searchsorted(row[by_row], rowids, side="right").tolist()
        self.db.executemany("INSERT INTO bm25_doc (rowid, terms) VALUES (?, ?)",
                            [(r, terms_bytes[4 * a : 4 * b]) for r, a, b in zip(rowids.tolist(), [0, *ends[:-1]], ends)])
        # rows: one per (term, block), appended to what is stored
        first = np.ones(len(tid), bool)
        first[1:] = (tid[1:] != tid[:-1]) | (block[1:] != block[:-1])
        g_start = np.flatnonzero(first)
        g_end = np.append(g_start[1:], len(tid))
        keys = list(zip(tid[g_start].tolist(), block[g_start].tolist()))
        max_tfs = np.maximum.reduceat(tf, g_start).tolist() if len(tid) else []
        offsets_bytes, tf_bytes = offset.tobytes(), tf.astype(np.uint8).tobytes()
        stored, put = self._stored([key for key in keys if key[1] not in fresh]), []
        for key, a, b, max_tf in zip(keys, g_start.tolist(), g_end.tolist(), max_tfs):
            offsets, tfs, n = offsets_bytes[2 * a : 2 * b], tf_bytes[a:b], b - a
            if max_tf >= 1 << 8:
                tfs = array(_tf_code(max_tf), tf[a:b].tolist()).tobytes()
            if key in stored:
                old_n, old_max, old_offsets, old_tfs = stored[key]
                max_tf, n = max(max_tf, old_max), n + old_n
                code = _tf_code(max_tf)
                if len(old_tfs) // old_n != array(code).itemsize or len(tfs) // (b - a) != array(code).itemsize:
                    old_tfs = array(code, array(_TF_CODES[len(old_tfs) // old_n], old_tfs).tolist()).tobytes()
                    tfs = array(code, tf[a:b].tolist()).tobytes()
                if array("H", old_offsets[-2:])[0] < offset[a]:  # appended after them, as new chunks are
                    offsets, tfs = old_offsets + offsets, old_tfs + tfs
                else:
                    merged = sorted(zip(array("H", old_offsets + offsets), array(code, old_tfs + tfs)))
                    offsets = array("H", [o for o, _ in merged]).tobytes()
                    tfs = array(code, [t for _, t in merged]).tobytes()
            put.append((*key, n, max_tf, offsets, tfs))
        self.db.executemany("INSERT OR REPLACE INTO bm25_posting (term, block, n, max_tf, offsets, tfs) "
                            "VALUES (?, ?, ?, ?, ?, ?)", put)
        self._add_stats(len(docs), int(lengths.sum()))

    def _term_ids(self, terms: set[str]) -> dict[str, int]:
        ids = {}
        for batch in _chunks(list(terms)):
            ids.update(self.db.execute(f"SELECT term, id FROM bm25_term WHERE term IN ({_marks(batch)})", batch))
        missing = list(terms - ids.keys())
        self.db.executemany("INSERT INTO bm25_term (term) VALUES (?)", [(t,) for t in missing])
        for batch in _chunks(missing):
            ids.update(self.db.execute(f"SELECT term, id FROM bm25_term WHERE term IN ({_marks(batch)})", batch))
        return ids

    def remove(self, rowids: list[int]) -> None:
        """Unindex these chunks (rowids not indexed are ignored)."""
        docs = []
        for batch in _chunks(list(rowids)):
            docs += self.db.execute(f"SELECT rowid, terms FROM bm25_doc WHERE rowid IN ({_marks(batch)})", batch).fetchall()
        if not docs:
            return
        drop = defaultdict(list)  # (term id, block) -> offsets
        by_block = defaultdict(list)
        for rowid, blob in docs:
            block, offset = rowid >> BLOCK_BITS, rowid & (BLOCK - 1)
            by_block[block].append(offset)
            tids = np.frombuffer(blob, np.uint32).tolist()
            for tid in tids:
                drop[(tid, block)].append(offset)
        lens = self._lens(by_block)
        tokens = 0
        for block, offsets in by_block.items():
            tokens += int(lens[block][offsets].sum())
            lens[block][offsets] = 0
        rows = {}
        for key, (n, _, offsets, tfs) in self._stored(drop).items():
            offsets, tfs = np.frombuffer(offsets, np.uint16), _tfs(tfs, n)
            keep = ~np.isin(offsets, drop[key])
            rows[key] = (offsets[keep], tfs[keep])
        self._put_postings(rows)
        self._put_lens(lens)
        self.db.executemany("DELETE FROM bm25_term WHERE id = ? AND NOT EXISTS (SELECT 1 FROM bm25_posting "
                            "WHERE term = ?)", [(tid, tid) for tid in {tid for tid, _ in drop}])
        for batch in _chunks([r for r, _ in docs]):
            self.db.execute(f"DELETE FROM bm25_doc WHERE rowid IN ({_marks(batch)})", batch)
        self._add_stats(-len(docs), -tokens)

    # --- searching ----------------------------------------------------------------------------
    def search(self, terms: list[str], n: int) -> list[tuple[int, float]]:
        """The top-n (rowid, BM25 score) of the chunks holding any of these distinct terms, best
        first, equal scores by rowid. Call inside a read transaction for a consistent view."""
        rows, tokens = self.stats()
        if not rows or not terms or n < 1:
            return []
        ids = {}
        for batch in _chunks(terms):
            ids.update(self.db.execute(f"SELECT term, id FROM bm25_term WHERE term IN ({_marks(batch)})", batch))
        known = [ids[t] for t in terms if t in ids]
        found = []
        for batch in _chunks(known):
            found += self.db.execute(
                f"SELECT term, block, n, offsets, tfs FROM bm25_posting WHERE term IN ({_marks(batch)})", batch
            ).fetchall()
        df: dict[int, int] = {}
        for r in found:
            df[r[0]] = df.get(r[0], 0) + r[2]
        tids = [tid for tid in known if 0 < df.get(tid, 0) <= rows / 2]
        if not tids:
            return []
        position = {tid: j for j, tid in enumerate(tids)}
        found = [r for r in found if r[0] in position]
        ids, scores = self._score(found, position, [idf(rows, df[tid]) for tid in tids], tokens / rows)
        if len(scores) > n:  # the n best and whatever ties the n-th, then ordered
            nth = -np.partition(-scores, n - 1)[n - 1]
            ids, scores = ids[scores >= nth], scores[scores >= nth]
        keep = np.lexsort((ids, -scores))[:n]
        return list(zip(ids[keep].tolist(), scores[keep].tolist()))

    def _score(self, found: list[tuple], position: dict[int, int], idfs: list[float], avgdl: float):
        """Exact scores of every chunk holding a query term, from the query terms' rows `found`
        (term id -> its place in the query in `position`): (rowids ascending, scores)."""
        found.sort(key=lambda r: position[r[0]])  # one run of rows per term, in query order
        lens = self._lens({r[1] for r in found})
        index = {block: i for i, block in enumerate(lens)}  # ascending blocks
        counts = np.array([r[2] for r in found])
        offsets = np.frombuffer(b"".join(r[3] for r in found), np.uint16).astype(np.int64)
        sizes = {len(r[4]) // r[2] for r in found}
        tfs = (np.frombuffer(b"".join(r[4] for r in found), _TF_TYPES[sizes.pop()]) if len(sizes) == 1
               else np.concatenate([_tfs(r[4], r[2]) for r in found]))
        slot = np.repeat(np.array([index[r[1]] for r in found]) * BLOCK, counts) + offsets
        length = np.concatenate(list(lens.values()))[slot].astype(np.float64)
        weights = weight(tfs.astype(np.float64), length, avgdl)
        scores = np.zeros(len(index) * BLOCK)
        ends = np.cumsum(counts).tolist()
        runs: dict[int, list[int]] = {}  # term's place in the query -> [first posting, end]
        for r, start, end in zip(found, [0, *ends[:-1]], ends):
            runs.setdefault(position[r[0]], [start, end])[1] = end
        for j, (start, end) in runs.items():  # in query order, as FTS5 sums them; a chunk once per term
            scores[slot[start:end]] += idfs[j] * weights[start:end]
        hit = np.flatnonzero(scores)
        return np.array(list(index), np.int64)[hit // BLOCK] * BLOCK + hit % BLOCK, scores[hit]
