"""Ingest throughput on a real corpus: the contexts of a SQuAD-format file, one text file per article.

    python bench/ingest_speed.py ../shared/eval/covid-qa/covid-qa.json

Prints files, chunks, tokens, seconds and chunks/s for a first ingest into a fresh embedded
Chroma, then the time of a second, unchanged run (which should embed nothing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import write_corpus  # bench/common.py: the script's folder is on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from ingest.pipeline import Ingestor
    from rag.embeddings import make_embedder
    from rag.settings import Settings
    from rag.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        n_files = write_corpus(args.dataset, docs)
        settings = Settings(data_dir=Path(tmp) / "data", collection="bench")
        t0 = time.perf_counter()
        embedder = make_embedder(settings)
        load_s = time.perf_counter() - t0
        store = open_store(settings, embedder)
        ingestor = Ingestor(store, settings)

        t0 = time.perf_counter()
        report = ingestor.ingest([docs])
        first_s = time.perf_counter() - t0
        texts = store.collection.get(include=["documents"])["documents"]
        tokens = sum(embedder.count_tokens(t) for t in texts)

        t0 = time.perf_counter()
        again = ingestor.ingest([docs])
        second_s = time.perf_counter() - t0

    chunks = report.totals["chunks"]
    print(f"dataset            {args.dataset.name}: {n_files} files, {chunks} chunks, {tokens} tokens")
    print(f"model load         {load_s:.1f} s")
    print(f"first ingest       {first_s:.1f} s  = {chunks / first_s:.1f} chunks/s, {tokens / first_s:.0f} tokens/s")
    print(f"unchanged re-run   {second_s:.2f} s  ({again.totals['unchanged']} unchanged, {again.totals['chunks']} chunks embedded)")


if __name__ == "__main__":
    main()
