"""Ours against the naive tutorial pipeline (bench/naive.py), in one run on the same machine.

    python bench/compare_naive.py ../shared/eval/covid-qa/covid-qa.json
    python bench/compare_naive.py ../shared/eval/xquad-en/xquad.en.json --only quality

The dataset's contexts become one text file per article. Stages (`--only`, default all):

ingest   Each pipeline ingests the corpus into a fresh Chroma in a subprocess of its own, model
         load timed apart. Naive: DirectoryLoader -> RecursiveCharacterTextSplitter(1000, 200) ->
         Chroma.from_documents. Ours: ingest.pipeline.Ingestor, default settings. Prints seconds,
         chunks/s, tokens/s (every chunk counted with the all-MiniLM-L6-v2 tokenizer for both) and
         corpus characters/s: the two chunk differently, so chunks/s alone is not a fair speed.
         Then the unchanged corpus again, as each pipeline would run it: the tutorial re-runs
         from_documents, which embeds and stores every chunk again (the duplicates are counted,
         then deleted so later stages see one copy); ours skips unchanged files.
memory   RSS of each ingest subprocess after its model loaded, and its peak RSS during the first
         ingest (the peak is reset after the load on Linux, so it is the ingest's own, model
         included): the same runs as `ingest`, so asking for either runs both.
quality  Every question (or the first --questions) of the dataset at k=4: recall@1, recall@4 and
         MRR, a hit being a gold answer string inside a retrieved chunk (normalised substring
         match). Naive: vectorstore.as_retriever(k=4). Ours: rag.retrieval.Retriever, default
         settings (dense + BM25). Queries are embedded beforehand in batches, for both.
latency  Query latency p50/p95 at --sizes chunks, query embedding included, naive and ours
         alternating query by query. SYNTHETIC SIZE: embedding 100k real chunks would take most
         of an hour per pipeline on two cores, so the collections are filled with copies of our
         ingest's real chunks (same text) whose vectors are the real embeddings plus gaussian
         noise (sigma 0.01 per dimension, renormalised), written directly with the Chroma API,
         identical content for both pipelines. Ours' keyword index is then built once from the
         collection (timed apart: what opening a collection from before the index costs once),
         and the first query is a warm-up, not counted. Then five times: one document (8 chunks)
         uploaded through each pipeline's own write path and the next query timed: the first
         query after an upload, and its extra over p50. "search only" repeats the queries with their
         embeddings computed beforehand: the two embedders differ in speed, this isolates the rest.
llm      Time to first token and decode tokens/s of the default local GGUF on the same questions
         (--llm-questions, evenly spaced among those ours does not refuse; one warm-up each,
         not counted). Naive: the tutorial's LCEL "stuff" chain with LangChain's rag-prompt and
         LlamaCpp. Ours: rag.answer.chain.QAChain.stream with rag.llm.make_llm, default settings. TTFT is
         question in -> first non-blank answer text, retrieval included; tokens are counted with
         the GGUF's own tokenizer for both.

Ends with a table: metric | naive | ours | ratio, the ratio oriented so that above 1 means ours
is better (ours/naive for throughput and recall, naive/ours for seconds, latency and memory).
The stores are kept in --work-dir (default /tmp/rag-bench/naive-compare/DATASET) so a later
`--only quality,latency,llm` reuses them; the ingest stage always starts from empty ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # rag/, ingest/ without an install

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import naive  # noqa: E402  (bench/naive.py: the script's folder is on sys.path)
from common import DEFAULT_DATA_DIR, collection_name, contains_answer, load_questions, write_corpus  # noqa: E402
from rag.app.evaluation.running import _PrecomputedQueries, with_precomputed_queries  # noqa: E402

STAGES = ("ingest", "memory", "quality", "latency", "llm")
OURS_COLLECTION = "bench"
NOISE_SIGMA = 0.01
K = naive.K


# --------------------------------------------------------------------------------------------
# helpers


def _status_mb(field: str) -> float | None:
    """VmRSS / VmHWM of this process from /proc (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux >= 4.0), so the ingest's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def minilm_tokenizer():
    from transformers import AutoTokenizer

    from rag.embeddings import packaged_model_path

    return AutoTokenizer.from_pretrained(str(packaged_model_path()))


def token_stats(texts: list[str]) -> dict:
    """Tokens of each chunk with the all-MiniLM-L6-v2 tokenizer, and what it would truncate."""
    tokenizer = minilm_tokenizer()
    limit = 256 - 2  # max_seq_length minus [CLS] and [SEP]
    counts = []
    for start in range(0, len(texts), 512):
        ids = tokenizer(texts[start : start + 512], add_special_tokens=False, verbose=False)["input_ids"]
        counts.extend(len(i) for i in ids)
    return {
        "tokens": sum(counts),
        "over_limit": sum(c > limit for c in counts),
        "tokens_cut": sum(max(0, c - limit) for c in counts),
    }


def percentile(values: list[float], p: float) -> float:
    import numpy as np

    return float(np.percentile(values, p))


def ours_settings(data_dir: Path):
    from rag.settings import Settings

    return Settings(data_dir=data_dir, collection=OURS_COLLECTION)


def all_rows(collection, include: list[str], page: int = 5000) -> dict:
    out: dict[str, list] = {"ids": [], **{key: [] for key in include}}
    offset = 0
    while True:
        got = collection.get(limit=page, offset=offset, include=include)
        if not len(got["ids"]):
            return out
        out["ids"].extend(got["ids"])
        for key in include:
            out[key].extend(got[key])
        offset += len(got["ids"])


# --------------------------------------------------------------------------------------------
# ingest children: one process per pipeline, so peak RSS is each pipeline's own


def child_naive(docs: Path, work: Path) -> dict:
    t0 = time.perf_counter()
    embeddings = naive.make_embeddings()
    load_s = time.perf_counter() - t0
    rss_loaded, peak_load = rss_mb(), peak_rss_mb()
    reset_peak_rss()

    t0 = time.perf_counter()
    chunks = naive.split_documents(naive.load_documents(docs))
    vectorstore = naive.build_vectorstore(chunks, embeddings, work / "chroma")
    first_s = time.perf_counter() - t0
    peak = peak_rss_mb()
    stored = vectorstore._collection.count()

    before = set(all_rows(vectorstore._collection, [])["ids"])
    t0 = time.perf_counter()  # the tutorial script, run again on the same folder
    rechunked = naive.split_documents(naive.load_documents(docs))
    again = naive.build_vectorstore(rechunked, embeddings, work / "chroma")
    again_s = time.perf_counter() - t0
    collection = again._collection
    after = collection.count()
    new = [i for i in all_rows(collection, [])["ids"] if i not in before]
    batch = vectorstore._client.get_max_batch_size()
    for start in range(0, len(new), batch):  # one copy again for the other stages
        collection.delete(ids=new[start : start + batch])
    return {
        "load_s": load_s,
        "first_s": first_s,
        "chunks": stored,
        "again_s": again_s,
        "again_embedded": len(rechunked),
        "again_duplicates": after - stored,
        "rss_loaded_mb": rss_loaded,
        "peak_load_mb": peak_load,
        "peak_rss_mb": peak,
        **token_stats([c.page_content for c in chunks]),
    }


def child_ours(docs: Path, work: Path) -> dict:
    from ingest.pipeline import Ingestor
    from rag.embeddings import make_embedder
    from rag.store import open_store

    settings = ours_settings(work)
    t0 = time.perf_counter()
    embedder = make_embedder(settings)
    load_s = time.perf_counter() - t0
    store = open_store(settings, embedder)
    rss_loaded, peak_load = rss_mb(), peak_rss_mb()
    reset_peak_rss()

    t0 = time.perf_counter()
    report = Ingestor(store, settings).ingest([docs])
    first_s = time.perf_counter() - t0
    peak = peak_rss_mb()
    if not report.ok:
        raise SystemExit("ours: ingest failed: " + "; ".join(f"{r.path}: {r.error}" for r in report.files if r.error))

    t0 = time.perf_counter()
    again = Ingestor(store, settings).ingest([docs])
    again_s = time.perf_counter() - t0
    texts = all_rows(store.collection, ["documents"])["documents"]
    return {
        "load_s": load_s,
        "first_s": first_s,
        "chunks": store.count(),
        "again_s": again_s,
        "again_embedded": again.totals["chunks"],
        "again_duplicates": store.count() - report.totals["chunks"],
        "rss_loaded_mb": rss_loaded,
        "peak_load_mb": peak_load,
        "peak_rss_mb": peak,
        **token_stats(texts),
    }


def run_child(which: str, docs: Path, work: Path) -> dict:
    """This script again as `--child which`, in a fresh process; its last stdout line is JSON."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", which, str(docs), str(work)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{which} ingest subprocess failed (exit {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    (work / "ingest.json").write_text(json.dumps(result, indent=1))
    return result


# --------------------------------------------------------------------------------------------
# the stages


@dataclass
class Row:
    metric: str
    naive: float | None
    ours: float | None
    fmt: str = "{:,.1f}"
    lower_is_better: bool = False
    compared: bool = True  # False: context, where neither direction is "better"

    def ratio(self) -> str:
        if not self.compared or not self.naive or not self.ours:
            return "-"
        value = self.naive / self.ours if self.lower_is_better else self.ours / self.naive
        how = "naive/ours" if self.lower_is_better else "ours/naive"
        return f"{value:,.2f}x ({how})"


def stage_ingest(args, docs: Path, corpus_chars: int, rows: list[Row], show: set[str]) -> None:
    print("\n## ingest (each pipeline in its own subprocess, fresh Chroma)", flush=True)
    results = {which: run_child(which, docs, args.work_dir / which) for which in ("naive", "ours")}
    n, o = results["naive"], results["ours"]
    for which, r in results.items():
        print(
            f"{which:<6} model load {r['load_s']:.1f} s | first ingest {r['first_s']:.1f} s: {r['chunks']} chunks, "
            f"{r['tokens']:,} tokens ({r['over_limit']} chunks over the 254-token limit, {r['tokens_cut']:,} "
            f"tokens never embedded) | unchanged re-run {r['again_s']:.2f} s, {r['again_embedded']} chunks "
            f"embedded again, {r['again_duplicates']} duplicates left | RSS after model load {r['rss_loaded_mb'] or 0:.0f} MB "
            f"(peak while loading {r['peak_load_mb']:.0f} MB), peak during ingest {r['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    if "ingest" in show:
        rows += [
            Row("embedding model load: seconds", n["load_s"], o["load_s"], lower_is_better=True),
            Row("ingest: seconds (model load excluded)", n["first_s"], o["first_s"], lower_is_better=True),
            Row("ingest: chunks", n["chunks"], o["chunks"], "{:,.0f}", compared=False),
            Row("ingest: chunks/s", n["chunks"] / n["first_s"], o["chunks"] / o["first_s"]),
            Row("ingest: tokens/s (MiniLM tokens)", n["tokens"] / n["first_s"], o["tokens"] / o["first_s"], "{:,.0f}"),
            Row("ingest: corpus chars/s", corpus_chars / n["first_s"], corpus_chars / o["first_s"], "{:,.0f}"),
            Row("ingest: chunks over 254 tokens (truncated)", n["over_limit"], o["over_limit"], "{:,.0f}", True),
            Row("re-ingest unchanged: seconds", n["again_s"], o["again_s"], "{:,.2f}", True),
            Row("re-ingest unchanged: chunks embedded", n["again_embedded"], o["again_embedded"], "{:,.0f}", True),
            Row("re-ingest unchanged: duplicates stored", n["again_duplicates"], o["again_duplicates"], "{:,.0f}", True),
        ]
    if "memory" in show:
        rows += [
            Row("RSS after model load, MB", n["rss_loaded_mb"], o["rss_loaded_mb"], "{:,.0f}", True),
            Row("peak RSS while loading the model, MB", n["peak_load_mb"], o["peak_load_mb"], "{:,.0f}", True),
            Row("peak RSS during ingest (model included), MB", n["peak_rss_mb"], o["peak_rss_mb"], "{:,.0f}", True),
        ]


def ensure_stores(args, docs: Path) -> None:
    if all((args.work_dir / which / "ingest.json").exists() for which in ("naive", "ours")):
        print(f"# reusing the stores ingested earlier in {args.work_dir}", flush=True)
        return
    print(f"# no stores in {args.work_dir} yet: ingesting (subprocesses)", flush=True)
    for which in ("naive", "ours"):
        run_child(which, docs, args.work_dir / which)


def open_naive(args, embeddings):
    return naive.open_vectorstore(embeddings, args.work_dir / "naive" / "chroma")


def open_ours(args, embed_questions: list[str] | None = None):
    from rag.embeddings import make_embedder
    from rag.retrieval import Retriever
    from rag.store import open_store

    settings = ours_settings(args.work_dir / "ours")
    store = open_store(settings, make_embedder(settings), create=False)
    if embed_questions:
        store = with_precomputed_queries(store, embed_questions)
    return Retriever(store, settings), settings


def stage_quality(args, dataset: Path, rows: list[Row]) -> None:
    questions = load_questions(dataset)[: args.questions or None]
    texts = [q.text for q in questions]
    print(f"\n## quality: {len(questions)} questions, k={K}", flush=True)

    t0 = time.perf_counter()
    retriever = naive.make_retriever(open_naive(args, _PrecomputedQueries(naive.make_embeddings(), texts)))
    ours, _ = open_ours(args, texts)
    print(f"# questions embedded in batches by both pipelines in {time.perf_counter() - t0:.1f} s", flush=True)

    scores = {}
    for which, search in (
        ("naive", lambda q: [d.page_content for d in retriever.invoke(q)]),
        ("ours", lambda q: [h.text for h in ours.retrieve(q, k=K)]),
    ):
        at1 = atk = rr = 0.0
        t0 = time.perf_counter()
        for q in questions:
            first = next((r for r, text in enumerate(search(q.text), start=1) if contains_answer(text, q)), None)
            if first:
                at1 += first == 1
                atk += 1
                rr += 1 / first
        n = len(questions)
        scores[which] = (at1 / n, atk / n, rr / n)
        ms = (time.perf_counter() - t0) * 1000 / n
        print(f"{which:<6} recall@1 {at1 / n:.3f}  recall@{K} {atk / n:.3f}  MRR@{K} {rr / n:.3f}  ({ms:.1f} ms/query, embedding precomputed)", flush=True)
    name = dataset.stem
    for i, label in enumerate(("recall@1", f"recall@{K}", f"MRR@{K}")):
        rows.append(Row(f"{name} {label} ({len(questions)} q)", scores["naive"][i], scores["ours"][i], "{:.3f}"))


def fill_collections(base: dict, size: int, naive_col, ours_col, batch: int) -> None:
    """Write `size` entries to both collections: the real chunks first, then noisy copies of them."""
    import numpy as np

    rng = np.random.default_rng(0)
    vectors = np.asarray(base["embeddings"], dtype=np.float32)
    n_base = len(base["ids"])
    for start in range(0, size, batch):
        idx = np.arange(start, min(size, start + batch))
        src = idx % n_base
        vecs = vectors[src]
        copy = idx >= n_base
        if copy.any():
            vecs = vecs.copy()
            vecs[copy] += rng.normal(0.0, NOISE_SIGMA, size=(int(copy.sum()), vecs.shape[1])).astype(np.float32)
            vecs[copy] /= np.linalg.norm(vecs[copy], axis=1, keepdims=True)
        ids = [base["ids"][s] if i < n_base else f"{base['ids'][s]}~{i // n_base}" for i, s in zip(idx, src)]
        docs = [base["documents"][s] for s in src]
        metas = [base["metadatas"][s] for s in src]
        naive_col.add(ids=ids, embeddings=vecs, documents=docs, metadatas=[{"source": m["source"]} for m in metas])
        ours_col.add(ids=ids, embeddings=vecs, documents=docs, metadatas=metas)


UPLOADS = 5


def first_query_after_upload(base: dict, size: int, vectorstore, store, calls, queries) -> dict[str, float]:
    """Median over UPLOADS rounds of: upload one document (8 chunks of real text under new ids)
    through each pipeline's own write path, then time the next query. Ours adds the chunks to its
    keyword index as it writes them; before the keyword index was incremental, this first query
    rebuilt BM25 over every chunk."""
    from langchain_core.documents import Document

    times: dict[str, list[float]] = {"naive": [], "ours": []}
    for r in range(UPLOADS):
        src = [(r * 8 + j) % len(base["ids"]) for j in range(8)]
        texts = [base["documents"][s] for s in src]
        ids = [f"upload-{size}-{r}-{j}" for j in range(8)]
        vectorstore.add_texts(texts, metadatas=[{"source": "upload"}] * 8, ids=ids)
        metas = [{**base["metadatas"][s], "doc_id": f"upload-{r}", "chunk_index": j} for j, s in enumerate(src)]
        store.add_chunks([Document(page_content=t, metadata=m) for t, m in zip(texts, metas)], ids)
        for which in ("naive", "ours"):
            t0 = time.perf_counter()
            calls[which](queries[r % len(queries)])
            times[which].append((time.perf_counter() - t0) * 1000)
    out = {which: statistics.median(t) for which, t in times.items()}
    print(f"# first query after an upload at {size:,} chunks, median of {UPLOADS}: naive {out['naive']:.1f} ms, "
          f"ours {out['ours']:.1f} ms", flush=True)
    return out


def stage_latency(args, dataset: Path, rows: list[Row]) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma

    from rag.embeddings import make_embedder
    from rag.retrieval import Retriever
    from rag.store import open_store

    questions = load_questions(dataset)
    step = max(1, len(questions) // args.latency_queries)
    queries = [q.text for q in questions[::step][: args.latency_queries]]
    _, source_settings = open_ours(args)
    source = open_store(source_settings, make_embedder(source_settings), create=False)
    base = all_rows(source.collection, ["documents", "metadatas", "embeddings"])
    embeddings = naive.make_embeddings()
    precomputed = _PrecomputedQueries(embeddings, queries)
    print(
        f"\n## latency: {len(queries)} queries per size, naive and ours alternating; 'search' = the same "
        "retrieval with the query embedded beforehand.\n"
        f"# SYNTHETIC SIZE: {len(base['ids'])} real chunks (ours' ingest, real embeddings); beyond that, copies with "
        f"the same text and the real vector + N(0, {NOISE_SIGMA}) noise, renormalised, written with the Chroma API; "
        "same content for both pipelines.",
        flush=True,
    )
    for size in args.sizes:
        root = args.work_dir / f"latency-{size}"
        if root.exists():
            shutil.rmtree(root)
        naive_client = chromadb.PersistentClient(path=str(root / "naive"), settings=ChromaSettings(anonymized_telemetry=False))
        vectorstore = Chroma(client=naive_client, collection_name="langchain", embedding_function=embeddings)
        settings = ours_settings(root / "ours")
        store = open_store(settings, make_embedder(settings))
        t0 = time.perf_counter()
        fill_collections(base, size, vectorstore._collection, store.collection, naive_client.get_max_batch_size())
        print(f"# {size:,} chunks written to each store in {time.perf_counter() - t0:.0f} s", flush=True)

        # The stores were written with the Chroma API directly, past our keyword index: build it
        # once, as opening a collection indexed before the keyword index existed does.
        t0 = time.perf_counter()
        store.sync_keyword_index()
        print(f"# ours: keyword index built once from {size:,} chunks in {time.perf_counter() - t0:.1f} s", flush=True)

        retriever = naive.make_retriever(vectorstore)
        ours = Retriever(store, settings)
        # Search only: the same stores, queries embedded beforehand (the embedders differ in speed).
        naive_search = naive.make_retriever(
            Chroma(client=naive_client, collection_name="langchain", embedding_function=precomputed)
        )
        ours_search = Retriever(with_precomputed_queries(store, queries), settings)
        calls = {
            "naive": retriever.invoke,
            "ours": lambda q: ours.retrieve(q, k=K),
            "naive search": naive_search.invoke,
            "ours search": lambda q: ours_search.retrieve(q, k=K),
        }
        timings: dict[str, list[float]] = {which: [] for which in calls}
        first: dict[str, float] = {}
        for i, query in enumerate(queries):
            for which in list(calls)[:: 1 if i % 2 == 0 else -1]:
                t0 = time.perf_counter()
                calls[which](query)
                elapsed = time.perf_counter() - t0
                if which in first:
                    timings[which].append(elapsed)
                else:
                    first[which] = elapsed  # warm-up, not counted
        for which, t in timings.items():
            print(
                f"{which:<12} {size:>7,} chunks: first query {first[which] * 1000:,.0f} ms, then p50 "
                f"{percentile(t, 50) * 1000:,.1f} ms, p95 {percentile(t, 95) * 1000:,.1f} ms",
                flush=True,
            )
        after_upload = first_query_after_upload(base, size, vectorstore, store, calls, queries)
        ms = {which: (percentile(t, 50) * 1000, percentile(t, 95) * 1000) for which, t in timings.items()}
        rows += [
            Row(f"query p50 ms @ {size:,} chunks", ms["naive"][0], ms["ours"][0], lower_is_better=True),
            Row(f"query p95 ms @ {size:,} chunks", ms["naive"][1], ms["ours"][1], lower_is_better=True),
            Row(f"  search only p50 ms @ {size:,}", ms["naive search"][0], ms["ours search"][0], lower_is_better=True),
            Row(f"  search only p95 ms @ {size:,}", ms["naive search"][1], ms["ours search"][1], lower_is_better=True),
            Row(f"first query after an upload, ms @ {size:,} (median of {UPLOADS})", after_upload["naive"],
                after_upload["ours"], "{:,.1f}", True),
            Row(f"  extra over p50, ms @ {size:,}", after_upload["naive"] - ms["naive"][0],
                after_upload["ours"] - ms["ours"][0], "{:,.1f}", True),
        ]
        shutil.rmtree(root, ignore_errors=True)


def _timed_stream(pieces) -> tuple[float | None, float | None, float, str]:
    """Seconds to the first and to the last non-blank text, total seconds, and the text, of a
    stream of str pieces (a naive chain's stream, or our Reply)."""
    t0 = time.perf_counter()
    first = last = None
    parts = []
    for piece in pieces:
        if not isinstance(piece, str):
            continue
        parts.append(piece)
        if piece.strip():
            last = time.perf_counter() - t0
            first = last if first is None else first
    return first, last, time.perf_counter() - t0, "".join(parts)


def stage_llm(args, dataset: Path, rows: list[Row]) -> None:
    from rag.answer.chain import QAChain
    from rag.llm import make_llm, resolve_local_model

    ours_retriever, settings = open_ours(args)
    chain = QAChain(ours_retriever, make_llm(settings), settings)
    llm = naive.make_llm(
        resolve_local_model(settings.local_model),
        n_ctx=settings.context_window,
        n_threads=os.cpu_count() or 1,
        temperature=settings.temperature,
        max_tokens=settings.max_answer_tokens,
    )
    naive_chain = naive.make_rag_chain(naive.make_retriever(open_naive(args, naive.make_embeddings())), llm)

    questions = load_questions(dataset)
    step = max(1, len(questions) // (4 * (args.llm_questions + 1)))
    picked = []
    for q in questions[::step]:  # evenly spaced, skipping those ours refuses before the LLM
        if chain.relevant(ours_retriever.retrieve(q.text)):
            picked.append(q.text)
        if len(picked) == args.llm_questions + 1:
            break
    print(
        f"\n## llm: {settings.local_model} ({resolve_local_model(settings.local_model).name}), "
        f"{len(picked) - 1} questions + 1 warm-up, temperature {settings.temperature}, max {settings.max_answer_tokens} tokens",
        flush=True,
    )

    def count(text: str) -> int:
        return len(llm.client.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    runs: dict[str, list[tuple[float, float, float, int]]] = {"naive": [], "ours": []}
    streams = {"naive": lambda q: naive_chain.stream(q), "ours": lambda q: chain.reply(q)}
    for i, question in enumerate(picked):
        for which in (("naive", "ours") if i % 2 == 0 else ("ours", "naive")):
            ttft, last, total, text = _timed_stream(streams[which](question))
            tokens = count(text.strip())
            if i == 0:
                continue  # warm-up
            ttft = total if ttft is None else ttft
            runs[which].append((ttft, total if last is None else last, total, tokens))
            print(f"{which:<6} q{i}: TTFT {ttft:.2f} s, {tokens} tokens in {total:.2f} s: {' '.join(text.split())[:90]!r}", flush=True)

    stats = {}
    for which, r in runs.items():
        # Decode rate between the first and the last visible text: tokens a stop swallowed and
        # the post-processing after the last token are left out.
        decode_tokens = sum(max(0, n - 1) for _, _, _, n in r)
        decode_s = sum(last - ttft for ttft, last, _, _ in r)
        stats[which] = (
            statistics.median(t for t, _, _, _ in r),
            decode_tokens / decode_s if decode_s > 0 else None,
            statistics.mean(n for _, _, _, n in r),
            statistics.mean(total for _, _, total, _ in r),
        )
        print(f"{which:<6} TTFT p50 {stats[which][0]:.2f} s, decode {stats[which][1] or 0:.1f} tokens/s, {stats[which][2]:.0f} tokens per answer, {stats[which][3]:.1f} s per answer", flush=True)
    n, o = stats["naive"], stats["ours"]
    rows += [
        Row("LLM time to first token p50, s", n[0], o[0], "{:.2f}", True),
        Row("LLM decode tokens/s", n[1], o[1]),
        Row("LLM answer length, tokens (mean)", n[2], o[2], "{:.0f}", compared=False),
        Row("LLM seconds per answer (mean)", n[3], o[3], "{:.1f}", True),
    ]


# --------------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    print("\n## summary (ratio > 1: ours is better)")
    width = max(len(r.metric) for r in rows)
    print(f"| {'metric':<{width}} | {'naive':>10} | {'ours':>10} | ratio")
    print(f"|{'-' * (width + 2)}|{'-' * 12}|{'-' * 12}|------")
    for r in rows:
        cell = lambda v: "-" if v is None else r.fmt.format(v)  # noqa: E731
        print(f"| {r.metric:<{width}} | {cell(r.naive):>10} | {cell(r.ours):>10} | {r.ratio()}")


def subset(dataset: Path, articles: int, work_dir: Path) -> Path:
    if not articles:
        return dataset
    data = json.loads(dataset.read_text(encoding="utf-8"))
    path = work_dir / f"{dataset.stem}.first{articles}.json"
    path.write_text(json.dumps({"data": data["data"][:articles]}), encoding="utf-8")
    return path


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        which, docs, work = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
        result = (child_naive if which == "naive" else child_ours)(docs, work)
        print(json.dumps(result))
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="SQuAD-format JSON, e.g. ../shared/eval/covid-qa/covid-qa.json")
    parser.add_argument("--only", default=",".join(STAGES), help=f"comma-separated stages: {','.join(STAGES)}")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="collection sizes for latency")
    parser.add_argument("--questions", type=int, default=0, help="quality: the first N questions (0: all)")
    parser.add_argument("--latency-queries", type=int, default=100, help="queries per size and pipeline")
    parser.add_argument("--llm-questions", type=int, default=5)
    parser.add_argument("--articles", type=int, default=0, help="only the first N articles (0: all), for quick runs")
    parser.add_argument("--work-dir", type=Path, help="default: /tmp/rag-bench/naive-compare/DATASET")
    args = parser.parse_args()
    stages = {s.strip() for s in args.only.split(",") if s.strip()}
    if stages - set(STAGES):
        parser.error(f"--only: unknown stage(s) {', '.join(sorted(stages - set(STAGES)))}; choose from {', '.join(STAGES)}")
    name = collection_name(args.dataset) + (f"-first{args.articles}" if args.articles else "")
    args.work_dir = (args.work_dir or DEFAULT_DATA_DIR / "naive-compare" / name).resolve()
    args.work_dir.mkdir(parents=True, exist_ok=True)

    dataset = subset(args.dataset, args.articles, args.work_dir)
    docs = args.work_dir / "docs"
    n_articles = write_corpus(dataset, docs)
    corpus_chars = sum(len(p.read_text(encoding="utf-8")) for p in docs.iterdir())
    from rag.settings import Settings

    defaults = Settings()
    print(
        f"# {args.dataset.name}: {n_articles} articles, {corpus_chars:,} characters; {os.cpu_count()} CPUs; "
        f"work dir {args.work_dir}\n# ours: default settings (embedding {defaults.embedding_model} "
        f"{getattr(defaults, 'embedding_backend', '')}, chunk "
        f"{defaults.chunk_size}/{defaults.chunk_overlap} tokens, hybrid={defaults.hybrid}, local model "
        f"{defaults.local_model}); naive: RecursiveCharacterTextSplitter({naive.CHUNK_SIZE}, {naive.CHUNK_OVERLAP}) + "
        f"HuggingFaceEmbeddings + Chroma.from_documents, k={K}",
        flush=True,
    )

    rows: list[Row] = []
    t_start = time.perf_counter()
    if stages & {"ingest", "memory"}:
        stage_ingest(args, docs, corpus_chars, rows, stages)
    if stages & {"quality", "latency", "llm"}:
        ensure_stores(args, docs)
    if "quality" in stages:
        stage_quality(args, dataset, rows)
    if "latency" in stages:
        stage_latency(args, dataset, rows)
    if "llm" in stages:
        stage_llm(args, dataset, rows)
    print_table(rows)
    print(f"\n# total {time.perf_counter() - t_start:.0f} s wall clock")


if __name__ == "__main__":
    main()
