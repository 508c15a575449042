"""Where a query's time goes at a large collection: ours alone, phase by phase.

    python bench/query_phases.py --source DATA_DIR --collection NAME --work-dir /tmp/rag-bench/phases \\
        --size 100000 --questions ../shared/eval/covid-qa/covid-qa.json

SOURCE/COLLECTION is a collection ingested by `rag ingest` (e.g. `rag eval`'s or
bench/answerability.py's data folder). Its chunks are copied into a fresh collection of --size
chunks the way bench/compare_naive.py's latency stage does (the real chunks, then copies with the
same text and the real vector plus N(0, 0.01) noise, written with the Chroma API), the keyword
index is built once, and 100 of the dataset's questions are asked. Prints p50/p95 of the whole
Retriever.retrieve (k=4, default settings) and, for the same questions, of its parts run alone:
embedding the query, the Chroma search (20 candidates), the keyword (FTS5) search, and fetching
the keyword-only hits' embeddings. With --reuse the collection of an earlier run is used as it is.
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


def fill(source, store, size: int) -> None:
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
        store.collection.add(ids=ids, embeddings=vecs, documents=[got["documents"][s] for s in src],
                             metadatas=[got["metadatas"][s] for s in src])


def main() -> None:
    from common import load_questions
    from rag.embeddings import make_embedder
    from rag.retrieval import Retriever
    from rag.settings import Settings
    from rag.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rag-bench/phases"))
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()

    embedder = make_embedder(Settings())
    settings = Settings(data_dir=args.work_dir, collection="phases")
    if not args.reuse:
        shutil.rmtree(args.work_dir, ignore_errors=True)
        source = open_store(Settings(data_dir=args.source, collection=args.collection), embedder, create=False)
        store = open_store(settings, embedder)
        fill(source, store, args.size)
        t0 = time.perf_counter()
        store.sync_keyword_index()
        print(f"# keyword index built once from {store.count():,} chunks in {time.perf_counter() - t0:.1f} s")
    store = open_store(settings, embedder, create=False)
    questions = [q.text for q in load_questions(args.questions)]
    questions = questions[:: max(1, len(questions) // 100)][:100]
    retriever, keyword = Retriever(store, settings), store.keyword_index()
    retriever.retrieve(questions[0], k=4)  # warm-up
    phases: dict[str, list[float]] = {p: [] for p in ("retrieve (all)", "embed query", "dense", "keyword", "fetch")}

    def timed(name, call):
        t0 = time.perf_counter()
        out = call()
        phases[name].append(time.perf_counter() - t0)
        return out

    for q in questions:
        timed("retrieve (all)", lambda: retriever.retrieve(q, k=4))
        qvec = timed("embed query", lambda: embedder.embeddings.embed_query(q))
        dense = {c.id for c in timed("dense", lambda: store.query_by_vector(qvec, 20))}
        found = timed("keyword", lambda: keyword.search(q, 20))
        timed("fetch", lambda: store.get_by_ids([cid for cid, _ in found if cid not in dense]))
    print(f"# {store.count():,} chunks, {len(questions)} questions, 2 CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| phase | p50 ms | p95 ms |\n|---|---:|---:|")
    for name, t in phases.items():
        print(f"| {name} | {statistics.median(t) * 1000:.1f} | {sorted(t)[int(0.95 * len(t))] * 1000:.1f} |")


if __name__ == "__main__":
    main()
