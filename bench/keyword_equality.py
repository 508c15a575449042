"""The keyword search gives today's exact ranking on every eval set: rag.bm25's block-pruned search
against FTS5's ORDER BY bm25() (bench/fts5_reference.py), question by question.

    python bench/keyword_equality.py --squad ../shared/eval/xquad-en/xquad.en.json \\
        ../shared/eval/covid-qa/covid-qa.json --data-dir /tmp/rag-bench

Each set is ingested as `rag eval` does (SQuAD files, one text file per article) or, for the
generated structured sets of bench/structured_docs.py (FAQ pages, a PDF manual, a slide deck), by
the Ingestor; ingestion is incremental. The FTS5 reference is built in memory from the same
indexed texts in the same order (the keyword index's rowid order: equal scores go by it). For
every question (answerable or not) the top 20 (the retriever's candidates at k=4) and the top 4
must be the same ids in the same order with the same scores, bit for bit; for the first 100
questions the whole hybrid retrieval's top 4 is compared too (the keyword search swapped).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def reference(store):
    """An FTS5 index of the store's chunks, in the keyword index's order."""
    from fts5_reference import FTS5Index

    from rag.context import indexed_text

    keyword = store.keyword_index()
    with keyword._lock:  # the order chunks were indexed in (rowid), which breaks ties
        ids = [cid for (cid,) in keyword._db.execute("SELECT id FROM chunk ORDER BY rowid")]
    fts5 = FTS5Index(None)
    for start in range(0, len(ids), 500):
        got = store.collection.get(ids=ids[start : start + 500], include=["documents", "metadatas"])
        text = {cid: indexed_text(t or "", m or {}) for cid, t, m in zip(got["ids"], got["documents"], got["metadatas"])}
        fts5.add(ids[start : start + 500], [text[cid] for cid in ids[start : start + 500]])
    return fts5


def structured_stores(data_dir: Path):
    import structured_docs

    from ingest.pipeline import Ingestor
    from rag.embeddings import make_embedder
    from rag.settings import Settings
    from rag.store import open_store

    root = data_dir / "structured-docs"
    for name, qs in structured_docs.generate(root).items():
        settings = Settings(data_dir=data_dir, collection=f"structured-{name}")
        store = open_store(settings, make_embedder(settings))
        report = Ingestor(store, settings).ingest([root / name])
        if not report.ok:
            raise SystemExit(f"ingest of {name} failed")
        yield name, store, settings, [q["question"] for q in qs]


def squad_stores(paths: list[Path], data_dir: Path):
    from common import load_dataset, open_ingested

    for path in paths:
        store, settings = open_ingested(path, data_dir)
        yield path.stem, store, settings, [q.text for q in load_dataset(path).questions]


def main() -> None:
    from rag.retrieval import Retriever

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, nargs="*", default=[])
    parser.add_argument("--no-structured", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/rag-bench"))
    args = parser.parse_args()

    sets = list(squad_stores(args.squad, args.data_dir))
    if not args.no_structured:
        sets += list(structured_stores(args.data_dir))
    print("| set | chunks | questions | top 20 identical | top 4 identical | retrieval top 4 identical |")
    print("|---|---:|---:|---:|---:|---:|")
    failed = False
    for name, store, settings, questions in sets:
        fts5 = reference(store)
        keyword = store.keyword_index()
        same20 = sum(keyword.search(q, 20) == fts5.search(q, 20) for q in questions)
        same4 = sum(keyword.search(q, 4) == fts5.search(q, 4) for q in questions)

        class FTS5Retriever(Retriever):
            def _keyword(self, query: str, n: int) -> list[str]:
                return [cid for cid, _ in fts5.search(query, n)]

        new, old = Retriever(store, settings), FTS5Retriever(store, settings)
        sample = questions[:100]
        same_hits = sum([h.chunk_id for h in new.retrieve(q, k=4)] == [h.chunk_id for h in old.retrieve(q, k=4)]
                        for q in sample)
        failed |= same20 != len(questions) or same4 != len(questions) or same_hits != len(sample)
        print(f"| {name} | {store.count():,} | {len(questions):,} | {same20:,} | {same4:,} | {same_hits}/{len(sample)} |",
              flush=True)
    if failed:
        raise SystemExit("the rankings differ")


if __name__ == "__main__":
    main()
