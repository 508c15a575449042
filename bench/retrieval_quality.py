"""Retrieval quality on a SQuAD-format dataset: dense vs hybrid (dense + BM25, RRF) vs MMR.

    python bench/retrieval_quality.py ../shared/eval/covid-qa/covid-qa.json [--k 4] [--data-dir /tmp/rag-bench]

Ingests the dataset's contexts (one file per article) into DATA_DIR once, then asks every
question in each mode. A question counts as found at rank r when a gold answer string appears,
case-insensitively and ignoring whitespace differences, in the text of the r-th retrieved chunk
(answer_start offsets are not used: some are wrong). Prints recall@1, recall@k and MRR@k (the
reciprocal rank of the first chunk holding an answer, 0 when none of the k does).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import DEFAULT_DATA_DIR, contains_answer, load_questions, open_ingested, with_precomputed_queries

MODES = {  # name: (hybrid, mmr)
    "dense": (False, False),
    "hybrid": (True, False),
    "dense+mmr": (False, True),
    "hybrid+mmr": (True, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions (0: all)")
    args = parser.parse_args()

    store, settings = open_ingested(args.dataset, args.data_dir)
    from rag.retrieval import Retriever

    questions = load_questions(args.dataset)[: args.limit or None]
    t0 = time.perf_counter()
    retriever = Retriever(with_precomputed_queries(store, [q.text for q in questions]), settings)
    print(f"# {len(questions)} questions embedded in {time.perf_counter() - t0:.1f} s (once, in batches, for all modes)")
    retriever.retrieve(questions[0].text, k=args.k)  # builds the BM25 index before timing

    print(f"# {args.dataset.name}: {len(questions)} questions, k={args.k}")
    print(f"{'mode':<12} {'recall@1':>9} {f'recall@{args.k}':>9} {f'MRR@{args.k}':>8} {'ms/query*':>10}")
    for name, (hybrid, mmr) in MODES.items():
        at1 = atk = rr = 0.0
        t0 = time.perf_counter()
        for q in questions:
            hits = retriever.retrieve(q.text, k=args.k, hybrid=hybrid, mmr=mmr)
            first = next((h.rank for h in hits if contains_answer(h.text, q)), None)
            if first is not None:
                at1 += first == 1
                atk += 1
                rr += 1 / first
        ms = (time.perf_counter() - t0) * 1000 / len(questions)
        n = len(questions)
        print(f"{name:<12} {at1 / n:>9.3f} {atk / n:>9.3f} {rr / n:>8.3f} {ms:>10.1f}", flush=True)


    print("* retrieval without the query embedding (precomputed); noisy on a shared machine")


if __name__ == "__main__":
    main()
