"""Running `rag eval`: the dataset's documents ingested into a throwaway collection, every sampled
question retrieved (and with --answers, answered by the real chain at temperature 0), scored.

The documents are ingested with the normal pipeline into a collection of their own in a
temporary folder that is deleted afterwards (or kept in `data_dir` and reused incrementally); the
configured RAG_DATA_DIR and RAG_CHROMA_URL are never touched.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from rag.app.evaluation.datasets import Dataset, collection_name, sample, write_documents
from rag.app.evaluation.report import EvalReport
from rag.app.evaluation.scoring import (
    RetrievalScores,
    evidence_report,
    exact_match,
    f1,
    first_rank,
    score_answers,
)
from rag.errors import DatasetError




class _PrecomputedQueries:
    """LangChain Embeddings answering embed_query from vectors embedded beforehand in batches."""

    def __init__(self, embeddings, texts: list[str], batch_size: int = 64):
        self._embeddings = embeddings
        unique = list(dict.fromkeys(texts))
        vectors = []
        for start in range(0, len(unique), batch_size):
            vectors.extend(embeddings.embed_documents(unique[start : start + batch_size]))
        self._cache = dict(zip(unique, vectors))

    def embed_query(self, text: str) -> list[float]:
        if text not in self._cache:
            self._cache[text] = self._embeddings.embed_query(text)
        return self._cache[text]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embeddings.embed_documents(texts)


def with_precomputed_queries(store, questions: list[str]):
    """A copy of `store` whose embedder has every question embedded already, in batches.

    Batching is several times faster than one query at a time. (Same model, same normalisation:
    for MiniLM embed_documents and embed_query give the same vector.)
    """
    import copy
    import dataclasses

    clone = copy.copy(store)
    clone.embedder = dataclasses.replace(
        store.embedder, embeddings=_PrecomputedQueries(store.embedder.embeddings, questions)
    )
    return clone


def _progress(total: int, unit: str, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, disable=not enabled, file=sys.stderr, leave=False)


def ingest_dataset(dataset: Dataset, settings, data_dir: Path, extra_docs: Iterable[Path] = (), progress: bool = False):
    """(store, settings, report): the dataset's documents and `extra_docs` ingested into an embedded
    Chroma in data_dir, collection named after the dataset, documents in data_dir/docs/NAME.
    Incremental (unchanged files are not re-embedded); documents no longer part of it are removed."""
    from ingest.pipeline import Ingestor, document_id
    from rag.embeddings import make_embedder
    from rag.settings import Settings
    from rag.store import open_store

    name = collection_name(dataset.path)
    data_dir = Path(data_dir).resolve()
    run = Settings(**{**settings.model_dump(), "data_dir": data_dir, "collection": name, "chroma_url": ""})
    docs = data_dir / "docs" / name
    write_documents(dataset.documents, docs)
    store = open_store(run, make_embedder(run))
    ingestor = Ingestor(store, run)
    files = ingestor.expand([docs, *extra_docs])
    with _progress(len(files), "file", "ingesting", progress) as bar:
        report = ingestor.ingest(files, on_result=lambda _: bar.update())
    wanted = {document_id(p) for p in files}
    for doc in store.documents():
        if doc.doc_id not in wanted:
            store.delete_document(doc.doc_id)
    return store, run, report




@dataclass
class EvalOptions:
    k: int
    answers: bool = False
    limit: int | None = None
    docs: list[Path] = field(default_factory=list)
    data_dir: Path | None = None  # None: a temporary folder, deleted afterwards
    progress: bool = False


def evaluate(dataset: Dataset, settings, options: EvalOptions, log: Callable[[str], None] = lambda _: None) -> EvalReport:
    """Ingest, retrieve (and with options.answers, answer) every sampled question; the report."""
    import contextlib
    import tempfile

    for doc_path in options.docs:
        if not Path(doc_path).exists():
            raise DatasetError(f"--docs {doc_path}: no such file or folder")
    if not dataset.documents and not options.docs:
        raise DatasetError(
            f"{dataset.path}: no contexts to search (no 'context' in any line): pass the documents as --docs PATH"
        )
    if not any(q.answerable for q in sample(dataset.questions, options.limit)):
        raise DatasetError(f"{dataset.path}: no answerable question among those evaluated (raise --limit)")
    llm = None
    if options.answers:  # load (or fail on) the LLM before the long ingest
        from rag.llm import make_llm

        settings = settings.model_copy(update={"temperature": 0.0})
        llm = make_llm(settings)

    keep = options.data_dir is not None
    with contextlib.nullcontext(options.data_dir) if keep else tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        data_dir = Path(tmp)
        where = f"in {data_dir}" if keep else "in a temporary collection"
        log(f"ingesting {len(dataset.documents)} documents{' and --docs' if options.docs else ''} {where}")
        t0 = time.perf_counter()
        store, run, report = ingest_dataset(dataset, settings, data_dir, options.docs, options.progress)
        ingest_s = time.perf_counter() - t0
        for failed in (r for r in report.files if r.status == "failed"):
            log(f"warning: not ingested: {failed.path}: {failed.error}")
        if store.count() == 0:
            raise DatasetError(f"{dataset.path}: nothing could be ingested to search")
        result = _measure(dataset, store, run, options, llm, log)
        result.corpus["ingest"] = report.totals
        result.seconds["ingest"] = round(ingest_s, 2)
        return result


def _measure(dataset: Dataset, store, settings, options: EvalOptions, llm, log) -> EvalReport:
    from rag.retrieval import Retriever

    questions = sample(dataset.questions, options.limit)
    answerable = [q for q in questions if q.answerable]
    t0 = time.perf_counter()
    log(f"{store.count()} chunks; embedding {len(questions)} questions")
    retriever = Retriever(with_precomputed_queries(store, [q.text for q in questions]), settings)
    ranks: dict[int, int | None] = {}
    with _progress(len(answerable), "q", "retrieving", options.progress) as bar:
        for i, q in enumerate(questions):
            if q.answerable:
                ranks[i] = first_rank(retriever.retrieve(q.text, k=options.k), q)
                bar.update()
    retrieval = RetrievalScores.from_ranks(list(ranks.values()), options.k)
    retrieval_s = time.perf_counter() - t0

    per_question = [
        {"question": q.text, "answers": list(q.answers), "answerable": q.answerable, "rank": ranks.get(i)}
        for i, q in enumerate(questions)
    ]
    answers = None
    answers_s = 0.0
    if llm is not None:
        from rag.answer import build
        from rag.llm import describe_llm

        chain = build(settings, stores=[retriever.store], llm=llm)
        results = []
        t0 = time.perf_counter()
        with _progress(len(questions), "q", "answering", options.progress) as bar:
            for q, row in zip(questions, per_question):
                answer = chain.ask(q.text, k=options.k)
                results.append((q, answer))
                row.update(answer=answer.answer, refused=answer.refused, status=answer.status,
                           quotes=[c.quote for c in answer.citations if c.quote],
                           first_token=answer.timings.get("first_token"), total=answer.timings.get("total"),
                           evidence_score=answer.evidence[0].score if answer.evidence else None)
                if q.answerable and not answer.refused:
                    row.update(exact_match=exact_match(answer.answer, q.answers), f1=f1(answer.answer, q.answers))
                bar.update()
        answers_s = time.perf_counter() - t0
        answers = {"model": describe_llm(settings), **score_answers(results),
                   "seconds_per_question": answers_s / len(questions),
                   "evidence_first": evidence_report(per_question)}

    return EvalReport(
        dataset=str(dataset.path),
        format=dataset.format,
        questions={
            "total": len(dataset.questions),
            "evaluated": len(questions),
            "answerable": len(answerable),
            "unanswerable": len(questions) - len(answerable),
            "skipped": dataset.skipped,
        },
        corpus={"documents": len(dataset.documents), "extra_paths": [str(p) for p in options.docs], "chunks": store.count()},
        settings={
            "k": options.k,
            "hybrid": settings.hybrid,
            "mmr": settings.mmr,
            "refuse_below": settings.refuse_below,
            "embedding_model": settings.embedding_model,
            "embedding_backend": getattr(settings, "embedding_backend", "torch"),
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
        },
        retrieval=retrieval,
        answers=answers,
        seconds={"retrieval": round(retrieval_s, 2), "answers": round(answers_s, 2)},
        per_question=per_question,
    )
