"""Ingest throughput against the tutorial pipeline, same run, and where the time goes.

    nice -n 5 python bench/ingest_speed.py ../shared/eval/covid-qa/covid-qa.json --small 500 \\
        --small-source ../shared/eval/xquad-en/xquad.en.json

Two corpora: the dataset's contexts, one text file per article (COVID-QA: 98 papers), and a folder
of --small generated small files (2-15 sentences of the sources each, 0.3-3 KB: notes, FAQ
answers). Each corpus is ingested into a fresh embedded Chroma by each pipeline in a child process
of its own, the embedding model loaded first and timed apart:

  tutorial     bench/naive.py: DirectoryLoader -> RecursiveCharacterTextSplitter(1000, 200) ->
               HuggingFaceEmbeddings (fp32 torch) -> Chroma.from_documents
  before       ours as it was: one file at a time (Ingestor.ingest_file per file: check, parse,
               chunk, embed, write, strictly in turn), the int8 model of then (export recipe 2:
               the feed-forward output projections in fp32)
  recipe2      Ingestor.ingest (reader thread + batches across files, ingest/batching.py) with
               RAG_EMBEDDING_INT8_RECIPE=2
  ours         the same with default settings (recipe 3: every MatMul int8): `rag ingest`

Throughput is MiniLM tokens/s: every stored chunk counted with the all-MiniLM-L6-v2 tokenizer
(the tutorial's chunks past the 254 tokens the model reads are counted whole, as
bench/compare_naive.py does, which flatters the tutorial). Each row gives its ratio to the
tutorial's tokens/s in the same run and the fraction of the machine's limit: MiniLM-L6 is about
23 MFLOP per token, so two AVX-512 VNNI cores top out near 28,000 tokens/s in int8 (--limit).

"Where the time goes" sums seconds per stage: check (hash, compare with the store), parse,
chunk (tokenize and split), embed, write (Chroma upsert, keyword index, old versions), and for
ours the writer's wait for the reader thread. Ours' parse and chunk run in the reader thread
beside embedding, so its stages sum to more than the wall time. --rounds repeats the pipelines
alternately; the table shows each run. The load average is printed next to the timings: the
machine is shared.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PIPELINES = ("tutorial", "before", "recipe2", "ours")
MACHINE_LIMIT = 28_000  # int8 MiniLM tokens/s on these two cores (23 MFLOP/token)


# --------------------------------------------------------------------------------------------
# corpora


def sentences_of(paths: list[Path]) -> list[str]:
    texts = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        texts += [p["context"] for article in data for p in article["paragraphs"]]
    out = []
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            sentence = " ".join(sentence.split())
            if 4 <= len(sentence.split()) <= 80:
                out.append(sentence)
    return list(dict.fromkeys(out))


def write_small_files(folder: Path, n: int, sentences: list[str], seed: int = 0) -> None:
    """n text files of 2-15 consecutive source sentences (a note, an FAQ answer), 0.3-3 KB."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        start = rng.randrange(len(sentences))
        body = " ".join(sentences[start : start + rng.randint(2, 15)])[:3000]
        paragraphs = re.sub(r"(?<=\.) (?=[A-Z])", lambda m: "\n\n" if rng.random() < 0.2 else " ", body)
        (folder / f"note-{i:04d}.txt").write_text(f"Note {i}\n\n{paragraphs}\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# the children


def count_tokens(texts: list[str]) -> int:
    from transformers import AutoTokenizer

    from rag.embeddings import packaged_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_path()))
    return sum(len(ids) for s in range(0, len(texts), 512)
               for ids in tokenizer(texts[s : s + 512], add_special_tokens=False, verbose=False)["input_ids"])


def child_tutorial(docs: Path, work: Path) -> dict:
    import naive

    t0 = time.perf_counter()
    embeddings = naive.make_embeddings()
    load_s = time.perf_counter() - t0
    spent = {"embed": 0.0}
    real = embeddings.embed_documents

    def timed(texts):
        t = time.perf_counter()
        try:
            return real(texts)
        finally:
            spent["embed"] += time.perf_counter() - t

    object.__setattr__(embeddings, "embed_documents", timed)
    t0 = time.perf_counter()
    documents = naive.load_documents(docs)
    t1 = time.perf_counter()
    chunks = naive.split_documents(documents)
    t2 = time.perf_counter()
    store = naive.build_vectorstore(chunks, embeddings, work / "chroma")
    t3 = time.perf_counter()
    stages = {"parse": t1 - t0, "chunk": t2 - t1, "embed": spent["embed"], "write": t3 - t2 - spent["embed"]}
    return {"load_s": load_s, "seconds": t3 - t0, "chunks": store._collection.count(), "stages": stages,
            "texts": [c.page_content for c in chunks]}


def child_ours(docs: Path, work: Path, sequential: bool, recipe: int | None = None) -> dict:
    import rag.onnx_embedding
    from ingest.pipeline import Ingestor
    from rag.embeddings import make_embedder, packaged_model_path
    from rag.settings import Settings
    from rag.store import open_store

    settings = Settings(data_dir=work, collection="bench")
    if recipe is not None:
        settings = settings.model_copy(update={"embedding_int8_recipe": recipe})
    rag.onnx_embedding.int8_model(packaged_model_path(), settings.embedding_int8_recipe)  # exported before the timed load
    t0 = time.perf_counter()
    embedder = make_embedder(settings)
    load_s = time.perf_counter() - t0
    store = open_store(settings, embedder)
    ingestor = Ingestor(store, settings)
    files = ingestor.expand([docs])
    t0 = time.perf_counter()
    if sequential:
        results = [ingestor.ingest_file(path) for path in files]
    else:
        results = list(ingestor.ingest_files(files))
    seconds = time.perf_counter() - t0
    failed = [f"{r.path}: {r.error}" for r in results if r.status == "failed"]
    if failed:
        raise SystemExit("ingest failed: " + "; ".join(failed[:3]))
    stages = {**ingestor.timings.seconds, **store.timings}
    texts = [t for got in store.pages(["documents"]) for t in got["documents"]]
    return {"load_s": load_s, "seconds": seconds, "chunks": store.count(), "stages": stages, "texts": texts}


def child(which: str, docs: Path, work: Path) -> None:
    if which == "tutorial":
        row = child_tutorial(docs, work)
    else:
        row = child_ours(docs, work, sequential=which == "before", recipe=2 if which in ("before", "recipe2") else None)
    row["tokens"] = count_tokens(row.pop("texts"))
    row["load_avg"] = os.getloadavg()[0]
    print(json.dumps(row), flush=True)


def run_child(which: str, docs: Path, work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    load_before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", which, str(docs), str(work)],
                          capture_output=True, text=True)
    shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{which} ingest child failed (exit {proc.returncode})")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["load_avg"] = (load_before + row["load_avg"]) / 2
    return row


# --------------------------------------------------------------------------------------------
# the table

STAGES = ("check", "parse", "chunk", "embed", "write", "wait for reader")


def report(corpus: str, rows: list[tuple[str, dict]]) -> None:
    tutorial = [r["tokens"] / r["seconds"] for name, r in rows if name == "tutorial"]
    base = sum(tutorial) / len(tutorial) if tutorial else None
    print(f"\n## {corpus}")
    print(f"{'pipeline':<11} {'chunks':>6} {'tokens':>9} {'load s':>6} {'ingest s':>8} {'tokens/s':>8} "
          f"{'vs tutorial':>11} {'of limit':>8} {'load avg':>8}   where the time goes (s)")
    for name, r in rows:
        rate = r["tokens"] / r["seconds"]
        ratio = f"{rate / base:.2f}x" if base else "-"
        stages = "  ".join(f"{s} {r['stages'][s]:.1f}" for s in STAGES if s in r["stages"])
        print(f"{name:<11} {r['chunks']:>6} {r['tokens']:>9,} {r['load_s']:>6.1f} {r['seconds']:>8.1f} {rate:>8,.0f} "
              f"{ratio:>11} {rate / MACHINE_LIMIT:>8.0%} {r['load_avg']:>8.1f}   {stages}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, nargs="?", help="SQuAD-format file: its articles are one corpus")
    parser.add_argument("--small", type=int, default=500, help="small generated files in the second corpus (0: none)")
    parser.add_argument("--small-source", type=Path, nargs="*", default=[],
                        help="SQuAD-format files whose sentences make the small files (default: the dataset)")
    parser.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES))
    parser.add_argument("--rounds", type=int, default=1, help="run every pipeline this many times, alternating")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        which, docs, work = args.child
        return child(which, Path(docs), Path(work))
    if args.dataset is None:
        parser.error("the dataset is required")

    from common import write_corpus

    print(f"# {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# {os.cpu_count()} CPUs; limit {MACHINE_LIMIT:,} int8 MiniLM tokens/s; load average at start "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="rag-ingest-speed-") as tmp:
        tmp_path = Path(tmp)
        corpora = []
        articles = tmp_path / "articles"
        n = write_corpus(args.dataset, articles)
        corpora.append((f"{args.dataset.name}: {n} articles, one file each", articles))
        if args.small:
            small = tmp_path / "small"
            write_small_files(small, args.small, sentences_of(args.small_source or [args.dataset]))
            corpora.append((f"{args.small} small files (0.3-3 KB)", small))
        for title, folder in corpora:
            rows = []
            for _ in range(args.rounds):
                for which in args.pipelines:
                    rows.append((which, run_child(which, folder, tmp_path / "work")))
            report(title, rows)


if __name__ == "__main__":
    main()
