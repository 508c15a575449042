"""Calibrating RAG_REFUSE_BELOW: the max cosine of retrieved passages, for questions the corpus
answers and for questions it does not.

    python bench/refusal_calibration.py --corpus ../shared/eval/covid-qa/covid-qa.json \
        --questions-in ../shared/eval/covid-qa/covid-qa.json \
        --questions-out ../shared/eval/xquad-en/xquad.en.json [--k 4] [--data-dir /tmp/rag-bench]

Pairing 1 ingests CORPUS and asks the QUESTIONS-IN questions (answerable: a refusal is a false
refusal) and the QUESTIONS-OUT questions (not answerable: a refusal is right). Pairing 2 swaps the
roles: the QUESTIONS-OUT dataset is the corpus, its own questions are in, QUESTIONS-IN's are out.
Each question's score is the highest cosine among the top-k hits of the Retriever (hybrid on),
which is what the answer chain compares with RAG_REFUSE_BELOW. For thresholds 0.10 to 0.70 it
prints both rates, then recommends the highest threshold whose false-refusal rate is at most 5%
on both pairings (refusal rates only grow with the threshold, so it refuses the most).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from common import DEFAULT_DATA_DIR, load_questions, open_ingested, with_precomputed_queries

THRESHOLDS = [round(0.10 + 0.05 * i, 2) for i in range(13)]  # 0.10 .. 0.70
MAX_FALSE_REFUSALS = 0.05


def max_scores(retriever, questions, k: int) -> np.ndarray:
    return np.array(
        [max((h.score for h in retriever.retrieve(q.text, k=k, hybrid=True)), default=-1.0) for q in questions]
    )


def pairing(corpus: Path, q_in: Path, q_out: Path, k: int, data_dir: Path) -> dict[float, tuple[float, float]]:
    store, settings = open_ingested(corpus, data_dir)
    from rag.retrieval import Retriever

    questions_in, questions_out = load_questions(q_in), load_questions(q_out)
    texts = [q.text for q in questions_in + questions_out]
    retriever = Retriever(with_precomputed_queries(store, texts), settings)
    inside = max_scores(retriever, questions_in, k)
    outside = max_scores(retriever, questions_out, k)
    print(f"\n## corpus {corpus.name}: in = {len(inside)} {q_in.name} questions, out = {len(outside)} {q_out.name} questions, k={k}")
    for label, s in (("in ", inside), ("out", outside)):
        p = np.percentile(s, [5, 25, 50, 75, 95])
        print(f"max cosine {label}: p5 {p[0]:.3f}  p25 {p[1]:.3f}  median {p[2]:.3f}  p75 {p[3]:.3f}  p95 {p[4]:.3f}")
    print(f"{'threshold':>9} {'out refused':>12} {'in false-refused':>17}")
    rates = {}
    for t in THRESHOLDS:
        rates[t] = (float(np.mean(outside < t)), float(np.mean(inside < t)))
        print(f"{t:>9.2f} {rates[t][0]:>12.1%} {rates[t][1]:>17.1%}", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions-in", type=Path, required=True)
    parser.add_argument("--questions-out", type=Path, required=True)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()

    first = pairing(args.corpus, args.questions_in, args.questions_out, args.k, args.data_dir)
    second = pairing(args.questions_out, args.questions_out, args.questions_in, args.k, args.data_dir)

    ok = [t for t in THRESHOLDS if first[t][1] <= MAX_FALSE_REFUSALS and second[t][1] <= MAX_FALSE_REFUSALS]
    print()
    if not ok:
        print(f"no threshold keeps false refusals at or below {MAX_FALSE_REFUSALS:.0%} on both pairings")
        return
    best = max(ok)
    print(
        f"recommended RAG_REFUSE_BELOW={best:.2f}: false refusals {first[best][1]:.1%} / {second[best][1]:.1%}, "
        f"out-of-corpus refused {first[best][0]:.1%} / {second[best][0]:.1%} "
        f"({args.corpus.name} corpus / {args.questions_out.name} corpus)"
    )


if __name__ == "__main__":
    main()
