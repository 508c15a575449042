"""Retrieval on every set, ours beside the tutorial pipeline: recall@1, recall@4, MRR@4.

    python bench/retrieval_table.py --squad ../shared/eval/xquad-en/xquad.en.json ../shared/eval/covid-qa/covid-qa.json
    python bench/retrieval_table.py --squad ... --chunk-size 192 --chunk-overlap 32 --skip-naive   # a sweep point

Sets: each SQuAD file given (its contexts as one text file per article, its answerable questions),
and the generated structured sets of bench/structured_docs.py (FAQ HTML pages, a PDF manual with an
outline and numbered question sections, a slide deck; written to WORK/structured). A question is
found at rank r when the r-th retrieved chunk holds a gold answer string (normalised substring;
for the structured sets, the section's unique code).

Naive (bench/naive.py): the tutorial's loader per file type (TextLoader, PyPDFLoader, BSHTMLLoader;
python-pptx's text for slides, as LangChain's loader needs `unstructured`), then
RecursiveCharacterTextSplitter(1000, 200), HuggingFaceEmbeddings, Chroma.from_documents, k=4.
Its stores are built once in WORK/naive/SET and reused. Ours: `rag ingest`'s Ingestor and
rag.retrieval.Retriever with default settings except --chunk-size/--chunk-overlap, in
WORK/ours-SIZE-OVERLAP (incremental: a second run embeds nothing). Queries are embedded
beforehand in batches by both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import naive  # noqa: E402
from common import Question, contains_answer, load_questions, write_corpus  # noqa: E402

K = naive.K


@dataclass
class EvalSet:
    name: str
    folder: Path
    questions: list[Question]


def squad_set(path: Path, work: Path) -> EvalSet:
    name = path.stem.replace(".", "-")
    folder = work / "docs" / name
    write_corpus(path, folder)
    return EvalSet(name, folder, load_questions(path))


def structured_sets(work: Path) -> list[EvalSet]:
    import structured_docs

    root = work / "structured"
    sets = structured_docs.generate(root)
    return [EvalSet(name, root / name, [Question(q["question"], (q["answer"],)) for q in qs]) for name, qs in sets.items()]


# --------------------------------------------------------------------------------------------
# the tutorial pipeline


def naive_documents(folder: Path):
    """Each file the way the tutorials load it."""
    naive._quiet()
    from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader, TextLoader
    from langchain_core.documents import Document

    docs = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        ext = path.suffix.lower()
        if ext == ".txt":
            docs += TextLoader(str(path), encoding="utf-8").load()
        elif ext == ".pdf":
            docs += PyPDFLoader(str(path)).load()
        elif ext in (".html", ".htm"):
            docs += BSHTMLLoader(str(path), open_encoding="utf-8").load()
        elif ext == ".pptx":
            from pptx import Presentation

            texts = [shape.text_frame.text for slide in Presentation(str(path)).slides
                     for shape in slide.shapes if shape.has_text_frame]
            docs.append(Document(page_content="\n\n".join(texts), metadata={"source": str(path)}))
    return docs


def naive_search(s: EvalSet, work: Path, embeddings):
    """A search function over the set's tutorial store (built on first use)."""
    from langchain_chroma import Chroma

    persist = work / "naive" / s.name
    if not (persist / "done").exists():
        import shutil

        shutil.rmtree(persist, ignore_errors=True)
        t0 = time.perf_counter()
        chunks = naive.split_documents(naive_documents(s.folder))
        naive.build_vectorstore(chunks, embeddings, persist)
        (persist / "done").write_text(str(len(chunks)))
        print(f"# naive {s.name}: {len(chunks)} chunks stored in {time.perf_counter() - t0:.0f} s", flush=True)
    retriever = naive.make_retriever(Chroma(persist_directory=str(persist), embedding_function=embeddings))
    return lambda q: [d.page_content for d in retriever.invoke(q)]


# --------------------------------------------------------------------------------------------
# ours


def ours_search(s: EvalSet, data_dir: Path, chunk_size: int, chunk_overlap: int, texts: list[str],
                retriever_options: dict | None = None):
    from ingest.pipeline import Ingestor, document_id
    from rag.embeddings import make_embedder
    from rag.app.evaluation.running import with_precomputed_queries
    from rag.retrieval import Retriever
    from rag.settings import Settings
    from rag.store import open_store

    settings = Settings(data_dir=data_dir, collection=s.name, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    store = open_store(settings, make_embedder(settings))
    t0 = time.perf_counter()
    ingestor = Ingestor(store, settings)
    files = ingestor.expand([s.folder])
    report = ingestor.ingest(files)
    if not report.ok:
        raise SystemExit(f"ingest failed: {[(r.path, r.error) for r in report.files if r.error]}")
    wanted = {document_id(p) for p in files}
    for doc in store.documents():
        if doc.doc_id not in wanted:
            store.delete_document(doc.doc_id)
    totals = report.totals
    print(f"# ours {s.name}: {store.count()} chunks ({totals['added'] + totals['updated']} files ingested, "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)
    retriever = Retriever(with_precomputed_queries(store, texts), settings, **(retriever_options or {}))
    return lambda q: [h.text for h in retriever.retrieve(q, k=K)]


def score(search, questions: list[Question]) -> tuple[float, float, float]:
    at1 = atk = rr = 0.0
    for q in questions:
        first = next((r for r, text in enumerate(search(q.text), start=1) if contains_answer(text, q)), None)
        if first:
            at1 += first == 1
            atk += 1
            rr += 1 / first
    n = len(questions)
    return at1 / n, atk / n, rr / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, nargs="*", default=[], help="SQuAD-format datasets")
    parser.add_argument("--no-structured", action="store_true", help="skip the generated FAQ/manual/slides sets")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rag-bench/retrieval-table"))
    parser.add_argument("--chunk-size", type=int, default=None, help="ours: RAG_CHUNK_SIZE (default: the setting's)")
    parser.add_argument("--chunk-overlap", type=int, default=None, help="ours: RAG_CHUNK_OVERLAP")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--no-context", action="store_true",
                        help="ablation: ours without title and heading path in the indexed text")
    parser.add_argument("--no-heading-ranking", action="store_true",
                        help="ablation: ours without the third (section heading) ranking of rag.retrieval")
    parser.add_argument("--keyword-weight", type=float, default=None,
                        help="probe: ours with the BM25 ranking weighted W in the fusion (default 1, equal)")
    parser.add_argument("--heading-weight", type=float, default=None,
                        help="probe: ours with the section-heading ranking weighted W (default 1)")
    parser.add_argument("--json", type=Path, help="also write the scores here")
    args = parser.parse_args()

    from rag.settings import Settings

    defaults = Settings()
    size = args.chunk_size or defaults.chunk_size
    overlap = defaults.chunk_overlap if args.chunk_overlap is None else args.chunk_overlap
    work = args.work_dir.resolve()
    ours_dir = f"ours-{size}-{overlap}"
    if args.no_context:
        import ingest.chunking
        import rag.context

        rag.context.context_prefix = ingest.chunking.context_prefix = lambda metadata: ""
        ours_dir += "-no-context"
    weights = {"bm25_rank": args.keyword_weight, "heading_rank": args.heading_weight}
    options = {"heading_ranking": not args.no_heading_ranking,
               "ranking_weights": {name: w for name, w in weights.items() if w is not None}}
    sets = [squad_set(p, work) for p in args.squad] + ([] if args.no_structured else structured_sets(work))
    embeddings = None if args.skip_naive else naive.make_embeddings()
    from rag.app.evaluation.running import _PrecomputedQueries

    results = {}
    for s in sets:
        texts = [q.text for q in s.questions]
        row = {"questions": len(texts)}
        if embeddings is not None:
            row["naive"] = score(naive_search(s, work, _PrecomputedQueries(embeddings, texts)), s.questions)
        row["ours"] = score(ours_search(s, work / ours_dir, size, overlap, texts, options), s.questions)
        results[s.name] = row
        print(f"{s.name:<10} " + "  ".join(
            f"{which} R@1 {r[0]:.3f} R@{K} {r[1]:.3f} MRR {r[2]:.3f}" for which, r in row.items() if which != "questions"
        ), flush=True)

    print(f"\nours: chunk size {size}, overlap {overlap}{' WITHOUT title/heading context' if args.no_context else ''}"
          f"{' WITHOUT the heading ranking' if args.no_heading_ranking else ''}"
          f"{f' keyword weight {args.keyword_weight}' if args.keyword_weight is not None else ''}"
          f"{f' heading weight {args.heading_weight}' if args.heading_weight is not None else ''}; k={K}")
    print(f"| set (questions) | naive R@1 | ours R@1 | naive R@{K} | ours R@{K} | naive MRR | ours MRR |")
    print("|---|---|---|---|---|---|---|")
    for name, row in results.items():
        n = row.get("naive", (float("nan"),) * 3)
        o = row["ours"]
        print(f"| {name} ({row['questions']}) | {n[0]:.3f} | **{o[0]:.3f}** | {n[1]:.3f} | **{o[1]:.3f}** | {n[2]:.3f} | **{o[2]:.3f}** |")
    if args.json:
        args.json.write_text(json.dumps({"chunk_size": size, "chunk_overlap": overlap, "sets": results}, indent=1))


if __name__ == "__main__":
    main()
