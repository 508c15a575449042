"""Where a query's time goes at a large collection, phase by phase, the keyword search old and new.

    python bench/query_phases.py --source DATA_DIR --collection NAME --work-dir /tmp/rag-bench/phases \\
        --size 100000 --questions ../shared/eval/covid-qa/covid-qa.json

SOURCE/COLLECTION is a collection ingested by `rag ingest` (e.g. `rag eval`'s or
bench/answerability.py's data folder). A fresh collection of --size chunks is grown from it:
with --text zipf (the default) the real chunks plus *distinct* synthetic ones (bench/synthetic_corpus.py:
words drawn from the real vocabulary extended with made-up words, Zipf-distributed; vectors are
real ones plus noise); with --text copies the way it was done before issue 30 (each real chunk
copied ~size/n times with the same text, so every posting list is that many times too long).
Both keyword indexes are written batch by batch as the chunks are (rag.keyword's, and FTS5 ranked
by bm25() as before, bench/fts5_reference.py, in a side file), and their write times reported.

Then 100 of the dataset's questions are asked, old and new interleaved per question. Prints
p50/p95 of the whole Retriever.retrieve (k=4, default settings) with each keyword search, and of
the parts run alone: embedding the query, the Chroma search (20 candidates), each keyword search
(20 hits), fetching the keyword-only hits' embeddings; and whether the two keyword searches gave
the same top 20 (ids, order and scores) for every question. --reuse runs on an earlier build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def copies(source, size: int):
    """The pre-issue-30 build: each real chunk's text again and again, its vector plus noise."""
    got = source.collection.get(include=["documents", "metadatas", "embeddings"])
    rng = np.random.default_rng(0)
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    n_base = len(got["ids"])
    for start in range(0, size, 5000):
        idx = np.arange(start, min(size, start + 5000))
        src = idx % n_base
        vecs = vectors[src].copy()
        copy = idx >= n_base
        vecs[copy] += rng.normal(0, 0.01, size=(int(copy.sum()), vecs.shape[1])).astype(np.float32)
        vecs[copy] /= np.linalg.norm(vecs[copy], axis=1, keepdims=True)
        ids = [got["ids"][s] if i < n_base else f"{got['ids'][s]}~{i // n_base}" for i, s in zip(idx, src)]
        yield ids, [got["documents"][s] for s in src], [got["metadatas"][s] for s in src], vecs


def fill(batches, store, fts5) -> dict[str, float]:
    """Write the chunks to Chroma and both keyword indexes; seconds spent in each."""
    from rag.context import indexed_text

    spent = {"chroma": 0.0, "keyword (bm25 blocks)": 0.0, "keyword (FTS5)": 0.0}
    for ids, texts, metas, vecs in batches:
        t0 = time.perf_counter()
        for s in range(0, len(ids), 1000):  # Chroma caps one add's size
            store.collection.add(ids=ids[s : s + 1000], embeddings=vecs[s : s + 1000],
                                 documents=texts[s : s + 1000], metadatas=metas[s : s + 1000])
        t1 = time.perf_counter()
        indexed = [indexed_text(t, m) for t, m in zip(texts, metas)]
        for s in range(0, len(ids), 500):  # as the store writes them: per ingest batch
            store.keyword.add(ids[s : s + 500], indexed[s : s + 500], metas[s : s + 500])
        t2 = time.perf_counter()
        for s in range(0, len(ids), 500):
            fts5.add(ids[s : s + 500], indexed[s : s + 500])
        t3 = time.perf_counter()
        spent["chroma"] += t1 - t0
        spent["keyword (bm25 blocks)"] += t2 - t1
        spent["keyword (FTS5)"] += t3 - t2
        print(f"# {store.count():,} chunks written", flush=True)
    return spent


def percentiles(t: list[float]) -> tuple[float, float]:
    return statistics.median(t) * 1000, sorted(t)[int(0.95 * len(t))] * 1000


def main() -> None:
    from common import load_questions
    from fts5_reference import FTS5Index
    from synthetic_corpus import SyntheticCorpus

    from rag.embeddings import make_embedder
    from rag.retrieval import Retriever
    from rag.settings import Settings
    from rag.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rag-bench/phases"))
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--text", choices=["zipf", "copies"], default="zipf")
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()

    embedder = make_embedder(Settings())
    settings = Settings(data_dir=args.work_dir, collection="phases")
    fts5_path = args.work_dir / "fts5-reference.sqlite3"
    if not args.reuse:
        shutil.rmtree(args.work_dir, ignore_errors=True)
        source = open_store(Settings(data_dir=args.source, collection=args.collection), embedder, create=False)
        store = open_store(settings, embedder)
        batches = (SyntheticCorpus.from_store(source).batches(args.size) if args.text == "zipf"
                   else copies(source, args.size))
        spent = fill(batches, store, FTS5Index(fts5_path))
        print("# written in " + ", ".join(f"{k} {v:.1f} s" for k, v in spent.items()))
    store = open_store(settings, embedder, create=False)
    fts5 = FTS5Index(fts5_path)
    questions = [q.text for q in load_questions(args.questions)]
    questions = questions[:: max(1, len(questions) // 100)][:100]

    class FTS5Retriever(Retriever):
        def _keyword(self, query: str, n: int) -> list[str]:
            return [cid for cid, _ in fts5.search(query, n)]

    new, old, keyword = Retriever(store, settings), FTS5Retriever(store, settings), store.keyword_index()
    for r in (new, old):
        r.retrieve(questions[0], k=4)  # warm-up
    names = ["retrieve (all), bm25 blocks", "retrieve (all), FTS5 bm25()", "embed query", "dense",
             "keyword, bm25 blocks", "keyword, FTS5 bm25()", "fetch"]
    phases: dict[str, list[float]] = {p: [] for p in names}

    def timed(name, call):
        t0 = time.perf_counter()
        out = call()
        phases[name].append(time.perf_counter() - t0)
        return out

    same_keyword = same_retrieval = 0
    for i, q in enumerate(questions):
        pair = [(names[0], new), (names[1], old)]
        got = {name: timed(name, lambda: r.retrieve(q, k=4)) for name, r in (pair if i % 2 else pair[::-1])}
        same_retrieval += [h.chunk_id for h in got[names[0]]] == [h.chunk_id for h in got[names[1]]]
        qvec = timed("embed query", lambda: embedder.embeddings.embed_query(q))
        dense = {c.id for c in timed("dense", lambda: store.query_by_vector(qvec, 20))}
        order = [("keyword, bm25 blocks", keyword), ("keyword, FTS5 bm25()", fts5)]
        found = {name: timed(name, lambda: index.search(q, 20)) for name, index in (order if i % 2 else order[::-1])}
        same_keyword += found[order[0][0]] == found[order[1][0]]
        timed("fetch", lambda: store.get_by_ids([cid for cid, _ in found[order[0][0]] if cid not in dense]))
    print(f"# {store.count():,} chunks ({args.text} text), {len(questions)} questions, 2 CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"# keyword top 20 identical (ids, order, scores): {same_keyword}/{len(questions)}; "
          f"retrieval top 4 identical: {same_retrieval}/{len(questions)}")
    print("| phase | p50 ms | p95 ms |\n|---|---:|---:|")
    for name, t in phases.items():
        print("| {} | {:.1f} | {:.1f} |".format(name, *percentiles(t)))


if __name__ == "__main__":
    main()
