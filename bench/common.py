"""What the benchmarks share: SQuAD-format datasets as documents and as questions, and an
ingested store in a reusable data folder.

The store lives in `--data-dir` (default /tmp/rag-bench), one collection per dataset, with the
documents written to DATA_DIR/docs/NAME. Ingestion is incremental, so a second benchmark run on
the same dataset embeds nothing. The datasets themselves are never copied into the repository.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

# Dataset loading, answer matching and batched query embeddings are shared with `rag eval`.
from rag.app.evaluation.datasets import (  # noqa: F401  (re-exported for the benchmark scripts)
    Question,
    collection_name,
    load_dataset,
    sample,
    write_documents,
)
from rag.app.evaluation.running import ingest_dataset, with_precomputed_queries  # noqa: F401
from rag.app.evaluation.scoring import contains_answer, normalize  # noqa: F401

DEFAULT_DATA_DIR = Path("/tmp/rag-bench")


def write_corpus(squad_path: Path, folder: Path) -> int:
    """One text file per article (its paragraphs' contexts); returns the number of articles."""
    return write_documents(load_dataset(squad_path).documents, folder)


def load_questions(squad_path: Path) -> list[Question]:
    """The answerable questions, each with its gold answer strings."""
    return [q for q in load_dataset(squad_path).questions if q.answerable]


def open_ingested(squad_path: Path, data_dir: Path = DEFAULT_DATA_DIR):
    """(store, settings) for the dataset's collection in data_dir, ingesting what is missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from rag.settings import Settings

    dataset = load_dataset(squad_path)
    t0 = time.perf_counter()
    store, settings, report = ingest_dataset(dataset, Settings(), data_dir)
    totals = report.totals
    print(
        f"# {store.name}: {len(dataset.documents)} documents, {store.count()} chunks in {settings.chroma_dir} "
        f"({totals['added'] + totals['updated']} ingested, {totals['unchanged']} unchanged, "
        f"{time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    if not report.ok:
        failed = [f"{r.path}: {r.error}" for r in report.files if r.status == "failed"]
        raise SystemExit("ingest failed:\n" + "\n".join(failed))
    return store, settings
