"""What the benchmarks share: SQuAD-format datasets as documents and as questions, and an
ingested store in a reusable data folder.

The store lives in `--data-dir` (default /tmp/rag-bench), one collection per dataset, with the
documents written to DATA_DIR/docs/NAME. Ingestion is incremental, so a second benchmark run on
the same dataset embeds nothing. The datasets themselves are never copied into the repository.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("/tmp/rag-bench")


def write_corpus(squad_path: Path, folder: Path) -> int:
    """One text file per article (its paragraphs' contexts); returns the number of articles."""
    data = json.loads(Path(squad_path).read_text(encoding="utf-8"))["data"]
    for i, article in enumerate(data):
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        (folder / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    return len(data)


@dataclass(frozen=True)
class Question:
    text: str
    answers: tuple[str, ...]  # gold answer strings (answer_start is ignored: some are wrong)


def load_questions(squad_path: Path) -> list[Question]:
    data = json.loads(Path(squad_path).read_text(encoding="utf-8"))["data"]
    questions = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa.get("answers", []) if a["text"].strip()))
                if answers:
                    questions.append(Question(qa["question"].strip(), answers))
    return questions


def normalize(text: str) -> str:
    """Lowercase, whitespace runs collapsed: how answers are matched against chunk text."""
    return " ".join(text.split()).lower()


def contains_answer(chunk_text: str, question: Question) -> bool:
    text = normalize(chunk_text)
    return any(normalize(a) in text for a in question.answers)


def collection_name(squad_path: Path) -> str:
    """A valid Chroma collection name from the dataset's file name: covid-qa, xquad.en."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(squad_path).stem).strip("._-")
    return (name or "bench").ljust(3, "0")[:63].rstrip("._-")


def open_ingested(squad_path: Path, data_dir: Path = DEFAULT_DATA_DIR):
    """(store, settings) for the dataset's collection in data_dir, ingesting what is missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from ingest.pipeline import Ingestor
    from rag.embeddings import make_embedder
    from rag.settings import Settings
    from rag.store import open_store

    name = collection_name(squad_path)
    docs = Path(data_dir).resolve() / "docs" / name
    docs.mkdir(parents=True, exist_ok=True)
    n_files = write_corpus(squad_path, docs)  # same bytes on a re-run: nothing re-embedded
    settings = Settings(data_dir=Path(data_dir).resolve(), collection=name)
    store = open_store(settings, make_embedder(settings))
    t0 = time.perf_counter()
    report = Ingestor(store, settings).ingest([docs])
    totals = report.totals
    print(
        f"# {name}: {n_files} documents, {store.count()} chunks in {settings.chroma_dir} "
        f"({totals['added'] + totals['updated']} ingested, {totals['unchanged']} unchanged, "
        f"{time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    if not report.ok:
        failed = [f"{r.path}: {r.error}" for r in report.files if r.status == "failed"]
        raise SystemExit("ingest failed:\n" + "\n".join(failed))
    return store, settings


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

    The benchmarks ask each question in several modes; batching and embedding once instead of
    per mode and per question makes them several times faster. (Same model, same normalisation:
    for MiniLM embed_documents and embed_query give the same vector.)
    """
    import copy
    import dataclasses

    clone = copy.copy(store)
    clone.embedder = dataclasses.replace(
        store.embedder, embeddings=_PrecomputedQueries(store.embedder.embeddings, questions)
    )
    return clone
