"""A scale curve: write throughput, query latency and memory at 10k, 100k and 1M chunks.

    nice -n 15 python bench/scale_curve.py --source DATA_DIR --collection covid-qa \\
        --questions ../shared/eval/covid-qa/covid-qa.json --work-dir /tmp/rag-bench/scale --sizes 10000 100000 1000000

One collection grows from SOURCE/COLLECTION (an ingested collection, e.g. `rag eval`'s COVID-QA)
to each size in turn, with the distinct synthetic chunks of bench/synthetic_corpus.py (Zipf text
over the real vocabulary plus made-up words; vectors are real ones plus noise: nothing is
embedded, as embedding 1M chunks would take days on 2 cores). Each chunk is written as the store
writes an ingest batch: Chroma add with the vector, then the keyword index (rag.keyword, 500 per
call). So "write throughput" is chunks/s *after* embedding: the cost the collection's size adds.

At each size, a fresh process (as a restarted server would be) loads the embedder, opens the store
and asks 100 of the dataset's questions through Retriever.retrieve (hybrid, k=4, the query
embedded by the real model): p50/p95 latency, and that process's memory: its peak RSS
(VmHWM), its RSS after the queries, and
the part the store adds (RSS after the queries minus RSS once the model is loaded). The data folder's size on disk too. Results go to WORK/scale.json (a
rerun continues from the largest size done) and the plot to bench/scale_curve.png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def grow(args, results: dict) -> None:
    """Write chunks up to each size, measuring each size in a fresh process."""
    from synthetic_corpus import SyntheticCorpus

    from rag.context import indexed_text
    from rag.embeddings import make_embedder
    from rag.settings import Settings
    from rag.store import open_store

    embedder = make_embedder(Settings())
    settings = Settings(data_dir=args.work_dir / "data", collection="scale")
    store = open_store(settings, embedder)
    source = open_store(Settings(data_dir=args.source, collection=args.collection), embedder, create=False)
    corpus = SyntheticCorpus.from_store(source)
    done = store.count()
    batches = corpus.batches(max(args.sizes), batch=5000)
    written, spent = 0, {"chroma": 0.0, "keyword": 0.0}
    for ids, texts, metas, vecs in batches:
        if written + len(ids) <= done:  # a rerun: written before (the same seed gives the same chunks)
            written += len(ids)
            continue
        t0 = time.perf_counter()
        for s in range(0, len(ids), 1000):
            store.collection.add(ids=ids[s : s + 1000], embeddings=vecs[s : s + 1000],
                                 documents=texts[s : s + 1000], metadatas=metas[s : s + 1000])
        t1 = time.perf_counter()
        indexed = [indexed_text(t, m) for t, m in zip(texts, metas)]
        for s in range(0, len(ids), 500):
            store.keyword.add(ids[s : s + 500], indexed[s : s + 500], metas[s : s + 500])
        spent["chroma"] += t1 - t0
        spent["keyword"] += time.perf_counter() - t1
        written += len(ids)
        if written % 50_000 == 0 or written in args.sizes:
            log(f"{written:,} chunks written (chroma {spent['chroma']:.0f} s, keyword {spent['keyword']:.0f} s, "
                f"load {os.getloadavg()[0]:.1f})")
        if written in args.sizes and str(written) not in results:
            total = sum(spent.values())
            since = written - max([int(k) for k in results if int(k) < written], default=0)
            row = {"chunks": written, "write_chunks_per_s": since / total if total else None,
                   "chroma_s": spent["chroma"], "keyword_s": spent["keyword"],
                   "writer_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            spent = {"chroma": 0.0, "keyword": 0.0}
            row.update(measure(args, settings))
            row["disk_mb"] = du(args.work_dir / "data") / 2**20
            results[str(written)] = row
            save(args, results)
            log(f"{written:,}: {json.dumps(row)}")


def measure(args, settings) -> dict:
    """Query latency and memory in a fresh process."""
    cmd = [sys.executable, __file__, "--query-only", "--work-dir", str(args.work_dir), "--questions",
           str(args.questions), "--source", str(args.source), "--collection", args.collection]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def query_only(args) -> None:
    from common import load_questions

    from rag.embeddings import make_embedder
    from rag.retrieval import Retriever
    from rag.settings import Settings
    from rag.store import open_store

    embedder = make_embedder(Settings())
    embedder.embeddings.embed_query("warm the model up")
    base = rss_now()
    settings = Settings(data_dir=args.work_dir / "data", collection="scale")
    store = open_store(settings, embedder, create=False)
    retriever = Retriever(store, settings)
    questions = [q.text for q in load_questions(args.questions)]
    questions = questions[:: max(1, len(questions) // 100)][:100]
    t0 = time.perf_counter()
    retriever.retrieve(questions[0], k=4)  # first query: loads the HNSW index, checks the keyword index
    first = time.perf_counter() - t0
    opened = rss_now()
    times = []
    for q in questions:
        t0 = time.perf_counter()
        retriever.retrieve(q, k=4)
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "query_p50_ms": statistics.median(times) * 1000, "query_p95_ms": sorted(times)[int(0.95 * len(times))] * 1000,
        "first_query_s": first, "model_rss_mb": base, "rss_after_first_query_mb": opened,
        "rss_after_queries_mb": rss_now(), "peak_rss_mb": rss_now("VmHWM:"),
        "store_rss_mb": rss_now() - base, "count": store.count(), "load": os.getloadavg()[0],
    }))


def rss_now(field: str = "VmRSS:") -> float:
    """This process's RSS in MB (VmHWM: its peak; not ru_maxrss, which keeps the parent's peak
    across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def save(args, results: dict) -> None:
    (args.work_dir / "scale.json").write_text(json.dumps(results, indent=1))
    plot(results, HERE / "scale_curve.png")


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(results.values(), key=lambda r: r["chunks"])
    x = [r["chunks"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(x, [r["write_chunks_per_s"] for r in rows], "o-")
    axes[0].set_title("write throughput (chunks/s, no embedding)")
    axes[1].plot(x, [r["query_p50_ms"] for r in rows], "o-", label="p50")
    axes[1].plot(x, [r["query_p95_ms"] for r in rows], "s--", label="p95")
    axes[1].set_title("hybrid query, k=4 (ms)")
    axes[1].legend()
    axes[2].plot(x, [r["rss_after_queries_mb"] for r in rows], "o-", label="query process RSS")
    axes[2].plot(x, [r["store_rss_mb"] for r in rows], "^-", label="RSS the store adds")
    axes[2].plot(x, [r["disk_mb"] for r in rows], "s--", label="on disk")
    axes[2].set_title("memory / disk (MB)")
    axes[2].legend()
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("chunks")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rag-bench/scale"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--query-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.query_only:
        return query_only(args)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    saved = args.work_dir / "scale.json"
    results = json.loads(saved.read_text()) if saved.exists() else {}
    grow(args, results)
    for row in sorted(results.values(), key=lambda r: r["chunks"]):
        log(json.dumps(row))


if __name__ == "__main__":
    main()
