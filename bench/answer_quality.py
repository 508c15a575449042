"""Answer quality of the local models: exact match and F1 of full RAG answers on a SQuAD-format set.

    python bench/answer_quality.py ../shared/eval/xquad-en/xquad.en.json --models smollm2,gemma3-270m --n 100

Each question goes through the real chain (hybrid retrieval, k passages, refusal on, the
model's answer with citation markers removed). Prints, per model: exact match, F1, "contains"
(a gold answer appears inside the answer: fairer to sentence-long answers), the share of refused
questions, and seconds per question. Questions are an evenly spaced sample, the same for every
model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import DEFAULT_DATA_DIR, load_questions, open_ingested


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--models", default="smollm2,gemma3-270m")
    parser.add_argument("--n", type=int, default=100, help="questions (evenly spaced sample)")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()

    from rag.answer.chain import QAChain
    from rag.llm import make_llm
    from rag.app.evaluation.scoring import contains, exact_match, f1
    from rag.retrieval import Retriever

    store, settings = open_ingested(args.dataset, args.data_dir)
    questions = load_questions(args.dataset)
    step = max(1, len(questions) // args.n)
    sample = questions[::step][: args.n]
    print(f"# {len(sample)} questions, k={args.k}")
    print(f"{'model':<14} {'EM':>6} {'F1':>6} {'contains':>9} {'refused':>8} {'s/q':>6}")
    for model in args.models.split(","):
        run = settings.model_copy(update={"local_model": model, "temperature": 0.0, "k": args.k})
        chain = QAChain(Retriever(store, run), make_llm(run), run)
        em = f1s = cont = refused = 0.0
        t0 = time.perf_counter()
        for q in sample:
            answer = chain.ask(q.text)
            refused += answer.refused
            text = "" if answer.refused else answer.answer
            em += exact_match(text, q.answers)
            f1s += f1(text, q.answers)
            cont += contains(text, q.answers)
        n = len(sample)
        secs = (time.perf_counter() - t0) / n
        print(f"{model:<14} {em / n:>6.3f} {f1s / n:>6.3f} {cont / n:>9.3f} {refused / n:>8.3f} {secs:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
