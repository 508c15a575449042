"""Which sentences of the retrieved passages hold the answer: evidence selection measured.

    python bench/evidence_selection.py ../shared/eval/xquad-en/xquad.en.json ../shared/eval/covid-qa/covid-qa.json \
        --n 300 --k 4 [--data-dir /tmp/rag-bench]

For each set: the retriever's top-k passages (hybrid, as the chain runs), split into sentences,
scored by cosine + W x keyword overlap for several W. Prints how often the best one, the best two
and the best three sentences contain a gold answer, next to the top passage and all k passages,
and the average characters of the best two (what the prompt carries).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import DEFAULT_DATA_DIR, contains_answer, load_questions, open_ingested, sample, with_precomputed_queries

WEIGHTS = [0.0, 0.15, 0.3, 0.5, 1.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", type=Path, nargs="+")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()

    from rag.answer.words import content_words
    from rag.answer.evidence import keyword_overlap, score_sentences, split_passages
    from rag.retrieval import Retriever

    for path in args.datasets:
        store, settings = open_ingested(path, args.data_dir)
        questions = sample(load_questions(path), args.n)
        retriever = Retriever(with_precomputed_queries(store, [q.text for q in questions]), settings)
        embeddings = store.embedder.embeddings
        hits_of = [retriever.retrieve(q.text, k=args.k) for q in questions]
        top_passage = sum(bool(h) and contains_answer(h[0].text, q) for q, h in zip(questions, hits_of)) / len(questions)
        any_passage = sum(any(contains_answer(x.text, q) for x in h) for q, h in zip(questions, hits_of)) / len(questions)
        print(f"\n## {path.name}: {len(questions)} questions, k={args.k}: top passage {top_passage:.3f}, any of {args.k} {any_passage:.3f}")
        print(f"{'keyword weight':>14} {'best 1':>7} {'best 2':>7} {'best 3':>7} {'chars of best 2':>16}")
        sentences_of = [split_passages(h) for h in hits_of]
        # Cosine once per sentence (weight 0); each weight adds its share of keyword overlap.
        cosine_of = [score_sentences(q.text, ss, embeddings, keyword_weight=0.0) for q, ss in zip(questions, sentences_of)]
        for w in WEIGHTS:
            found = [0, 0, 0]
            chars = 0
            for q, scored in zip(questions, cosine_of):
                asked = content_words(q.text)
                ranked = sorted(scored, key=lambda s: -(s.score + w * keyword_overlap(asked, s.text)))
                for j in range(3):
                    found[j] += any(contains_answer(s.text, q) for s in ranked[: j + 1])
                chars += sum(len(s.text) for s in ranked[:2])
            n = len(questions)
            print(f"{w:>14.2f} {found[0] / n:>7.3f} {found[1] / n:>7.3f} {found[2] / n:>7.3f} {chars / n:>16.0f}", flush=True)


if __name__ == "__main__":
    main()
