"""`rag eval`: retrieval and answer quality on a question set whose answers are known.

Two dataset formats:

- SQuAD JSON (`{"data": [{"paragraphs": [{"context", "qas": [{"question", "answers":
  [{"text"}], "is_impossible"}]}]}]}`): each article's contexts become one document;
  `is_impossible: true` makes a question unanswerable; a question with neither an answer text nor
  `is_impossible` has nothing to match and is skipped (counted as `skipped`).
- JSONL, one object per line: `question` (text), `answers` (list of strings), `answerable`
  (optional, default true), `context` (optional). Each distinct context becomes one document; a
  file without any contexts needs the documents to search passed as `--docs PATH`.

A question is found at rank r when a gold answer string appears, case-insensitively and ignoring
whitespace differences, in the r-th retrieved chunk (SQuAD's answer_start offsets are not used:
some are wrong). Retrieval metrics are over the answerable questions: recall@j for j = 1..k (of
the same top-k list) and MRR@k (1/rank of the first chunk holding an answer, 0 when none of the k
does). Answer metrics run the real chain (retrieval, refusal, the configured LLM at temperature 0):
SQuAD exact match and F1 over the answerable questions that were answered, refusal rates over all.

The dataset's documents are ingested with the normal pipeline into a collection of their own in a
temporary folder that is deleted afterwards (or kept in `data_dir` and reused incrementally); the
configured RAG_DATA_DIR and RAG_CHROMA_URL are never touched.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from rag.errors import DatasetError


@dataclass(frozen=True)
class Question:
    text: str
    answers: tuple[str, ...]  # gold answer strings, stripped, deduplicated
    answerable: bool = True


@dataclass
class Dataset:
    path: Path
    format: str  # "squad" or "jsonl"
    questions: list[Question]
    documents: list[str]  # texts to ingest: one per SQuAD article, one per distinct JSONL context
    skipped: int = 0  # SQuAD questions with no answer text and not marked impossible


# --------------------------------------------------------------------------------------------
# loading


def load_dataset(path: str | Path) -> Dataset:
    """A SQuAD JSON or JSONL dataset; DatasetError naming the file (and line/entry) if malformed."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read it: {exc}") from None
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        dataset = _load_jsonl(path, text)
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data" and text.lstrip().startswith("{"):
                dataset = _load_jsonl(path, text)  # JSONL under a .json name
            else:
                raise DatasetError(f"{path}: not valid JSON: {exc}") from None
        else:
            dataset = _load_squad(path, doc)
    if not any(q.answerable for q in dataset.questions):
        raise DatasetError(f"{path}: no answerable questions with an answer string to evaluate")
    return dataset


def _expect(value: Any, kind: type, path: Path, where: str) -> Any:
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        wanted = {list: "a list", dict: "an object", str: "a non-empty string", bool: "true or false"}[kind]
        raise DatasetError(f"{path}: {where} must be {wanted}")
    return value


def _answer_texts(raw: Iterable[Any], path: Path, where: str) -> tuple[str, ...]:
    texts = []
    for i, answer in enumerate(raw):
        text = answer.get("text") if isinstance(answer, dict) else answer
        if not isinstance(text, str):
            raise DatasetError(f"{path}: {where}[{i}] must be a string or an object with a 'text' string")
        texts.append(text.strip())
    return tuple(dict.fromkeys(t for t in texts if t))


def _load_squad(path: Path, doc: Any) -> Dataset:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DatasetError(
            f"{path}: not a SQuAD file (no top-level 'data' list); JSONL datasets need a .jsonl name"
        )
    questions, documents, skipped = [], [], 0
    for a, article in enumerate(doc["data"]):
        where = f"data[{a}]"
        paragraphs = _expect(_expect(article, dict, path, where).get("paragraphs"), list, path, f"{where}.paragraphs")
        contexts = []
        for p, paragraph in enumerate(paragraphs):
            pw = f"{where}.paragraphs[{p}]"
            _expect(paragraph, dict, path, pw)
            contexts.append(_expect(paragraph.get("context"), str, path, f"{pw}.context"))
            for q, qa in enumerate(_expect(paragraph.get("qas", []), list, path, f"{pw}.qas")):
                qw = f"{pw}.qas[{q}]"
                text = _expect(_expect(qa, dict, path, qw).get("question"), str, path, f"{qw}.question")
                answers = _answer_texts(_expect(qa.get("answers", []), list, path, f"{qw}.answers"), path, f"{qw}.answers")
                impossible = bool(qa.get("is_impossible", False))
                if impossible:
                    questions.append(Question(text.strip(), (), answerable=False))
                elif answers:
                    questions.append(Question(text.strip(), answers))
                else:
                    skipped += 1
        if contexts:
            documents.append("\n\n".join(contexts))
    return Dataset(path, "squad", questions, documents, skipped)


def _load_jsonl(path: Path, text: str) -> Dataset:
    questions, contexts = [], {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: {where}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        _expect(row, dict, path, where)
        question = _expect(row.get("question"), str, path, f"{where}: 'question'")
        answers = _answer_texts(_expect(row.get("answers", []), list, path, f"{where}: 'answers'"), path, f"{where}: 'answers'")
        answerable = _expect(row.get("answerable", True), bool, path, f"{where}: 'answerable'")
        if answerable and not answers:
            raise DatasetError(
                f"{path}: {where}: an answerable question needs at least one string in 'answers' "
                '(or "answerable": false)'
            )
        if row.get("context") is not None:
            contexts[_expect(row["context"], str, path, f"{where}: 'context'")] = None
        questions.append(Question(question.strip(), answers if answerable else (), answerable))
    return Dataset(path, "jsonl", questions, list(contexts))


def sample(questions: list[Question], n: int | None) -> list[Question]:
    """n questions evenly spaced through the set (all when n is None or not smaller): every
    article is represented, and the same n gives the same questions on every run."""
    if n is None or n >= len(questions):
        return list(questions)
    step = max(1, len(questions) // n)
    return questions[::step][:n]


def write_documents(texts: list[str], folder: Path) -> int:
    """One text file per document, NNN.txt; other files in `folder` are removed. Returns the count."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {f"{i:03d}.txt" for i in range(len(texts))}
    for old in folder.iterdir():
        if old.is_file() and old.name not in names:
            old.unlink()
    for i, text in enumerate(texts):
        target = folder / f"{i:03d}.txt"
        data = text.encode("utf-8")
        if not target.exists() or target.read_bytes() != data:  # unchanged files keep their mtime
            target.write_bytes(data)
    return len(texts)


def collection_name(dataset_path: Path) -> str:
    """A valid Chroma collection name from the dataset's file name: covid-qa, xquad.en."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(dataset_path).stem).strip("._-")
    return (name or "eval").ljust(3, "0")[:63].rstrip("._-")


# --------------------------------------------------------------------------------------------
# matching and scoring


def normalize(text: str) -> str:
    """Lowercase, whitespace runs collapsed: how answers are matched against chunk text."""
    return " ".join(text.split()).lower()


def contains_answer(chunk_text: str, question: Question) -> bool:
    text = normalize(chunk_text)
    return any(normalize(a) in text for a in question.answers)


def first_rank(hits, question: Question) -> int | None:
    """Rank of the first hit holding a gold answer, None when none does."""
    return next((h.rank for h in hits if contains_answer(h.text, question)), None)


@dataclass(frozen=True)
class RetrievalScores:
    k: int
    questions: int
    recall_by_k: list[float]  # recall@1 .. recall@k
    mrr: float

    @classmethod
    def from_ranks(cls, ranks: list[int | None], k: int) -> RetrievalScores:
        n = len(ranks)
        found = [r for r in ranks if r is not None and r <= k]
        curve = [sum(r <= j for r in found) / n if n else 0.0 for j in range(1, k + 1)]
        return cls(k, n, curve, sum(1 / r for r in found) / n if n else 0.0)

    def to_json(self) -> dict:
        return {
            "k": self.k,
            "questions": self.questions,
            "recall_at_1": self.recall_by_k[0],
            "recall_at_k": self.recall_by_k[-1],
            "mrr": self.mrr,
            "recall_by_k": self.recall_by_k,
        }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_answers(results: list[tuple[Question, Any]]) -> dict:
    """EM/F1/contains over answerable questions that were answered (and, for comparison with
    bench/answer_quality.py, over all answerable ones with refusals scoring 0), refusal rates."""
    from rag.metrics import contains, exact_match, f1

    answerable = [(q, a) for q, a in results if q.answerable]
    unanswerable = [(q, a) for q, a in results if not q.answerable]
    answered = [(q, a) for q, a in answerable if not a.refused]

    def scores(pairs, refused_as_zero: bool) -> dict:
        def text(a):
            return "" if a.refused and refused_as_zero else a.answer

        return {
            "exact_match": _mean([exact_match(text(a), q.answers) for q, a in pairs]),
            "f1": _mean([f1(text(a), q.answers) for q, a in pairs]),
            "contains": _mean([contains(text(a), q.answers) for q, a in pairs]),
        }

    return {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "answered": len(answered),
        **scores(answered, False),
        "all_answerable": scores(answerable, True),
        "refusal_rate": _mean([float(a.refused) for _, a in results]),
        "false_refusal_rate": _mean([float(a.refused) for _, a in answerable]),
        "correct_refusal_rate": _mean([float(a.refused) for _, a in unanswerable]),
    }


# --------------------------------------------------------------------------------------------
# the store


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


# --------------------------------------------------------------------------------------------
# the whole evaluation


@dataclass
class EvalOptions:
    k: int
    answers: bool = False
    limit: int | None = None
    docs: list[Path] = field(default_factory=list)
    data_dir: Path | None = None  # None: a temporary folder, deleted afterwards
    progress: bool = False


def evaluate(dataset: Dataset, settings, options: EvalOptions, log: Callable[[str], None] = lambda _: None) -> dict:
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
        result["corpus"]["ingest"] = report.totals
        result["seconds"]["ingest"] = round(ingest_s, 2)
        return result


def _measure(dataset: Dataset, store, settings, options: EvalOptions, llm, log) -> dict:
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
        from rag.chain import QAChain
        from rag.llm import describe_llm
        from rag.metrics import exact_match, f1

        chain = QAChain(retriever, llm, settings)
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
        from rag.metrics import evidence_report

        answers = {"model": describe_llm(settings), **score_answers(results),
                   "seconds_per_question": answers_s / len(questions),
                   "evidence_first": evidence_report(per_question)}

    return {
        "dataset": str(dataset.path),
        "format": dataset.format,
        "questions": {
            "total": len(dataset.questions),
            "evaluated": len(questions),
            "answerable": len(answerable),
            "unanswerable": len(questions) - len(answerable),
            "skipped": dataset.skipped,
        },
        "corpus": {"documents": len(dataset.documents), "extra_paths": [str(p) for p in options.docs], "chunks": store.count()},
        "settings": {
            "k": options.k,
            "hybrid": settings.hybrid,
            "mmr": settings.mmr,
            "refuse_below": settings.refuse_below,
            "embedding_model": settings.embedding_model,
            "embedding_backend": getattr(settings, "embedding_backend", "torch"),
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
        },
        "retrieval": retrieval.to_json(),
        "answers": answers,
        "seconds": {"retrieval": round(retrieval_s, 2), "answers": round(answers_s, 2)},
        "per_question": per_question,
    }


def save_plot(recall_by_k: list[float], path: Path, title: str) -> None:
    """recall@k against k as a PNG (matplotlib's Agg canvas; no pyplot, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    ks = list(range(1, len(recall_by_k) + 1))
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(ks, recall_by_k, marker="o")
    if len(ks) <= 12:
        for k, r in zip(ks, recall_by_k):
            ax.annotate(f"{r:.3f}", (k, r), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set(xlabel="k (passages retrieved)", ylabel="recall@k (answer in the top k)", ylim=(0, 1.1), title=title)
    ax.set_yticks([i / 5 for i in range(6)])
    ax.set_xlim(0.5, len(ks) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
