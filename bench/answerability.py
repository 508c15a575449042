"""Is the answer in the retrieved passages at all? Features of the evidence, measured on answerable
and SQuAD-2.0-style unanswerable questions, and a logistic model fitted on the dev half.

    python bench/unanswerable.py ../shared/eval/xquad-en/xquad.en.json --n 120 --per-paragraph 2 --out /tmp/ans/xquad-u.json
    python bench/unanswerable.py ../shared/eval/covid-qa/covid-qa.json --n 49 --per-paragraph 4 --out /tmp/ans/covid-u.json
    python bench/answerability.py /tmp/ans/xquad-u.json /tmp/ans/covid-u.json --data-dir /tmp/ans/data

No LLM: retrieval (k=4) and evidence selection as `rag ask` runs them, then rag.answer.answerability's
features. Dev = even-numbered questions of every set, test = odd-numbered ones. For each single
feature and for the fitted model it prints, on the test half of each set, the share of
unanswerable questions caught (below the threshold) when the threshold lets through 90% of the
answerable questions of the dev half. `--write` prints the fitted weights to paste into
rag/answerability.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def collect(path: Path, data_dir: Path, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, answerable flags, retrieved-gold flags) for every question of a set."""
    from rag.answer.answerability import features
    from rag.app.evaluation.datasets import load_dataset
    from rag.app.evaluation.running import ingest_dataset, with_precomputed_queries
    from rag.app.evaluation.scoring import first_rank
    from rag.answer.evidence import select_evidence
    from rag.retrieval import Retriever
    from rag.settings import Settings

    dataset = load_dataset(path)
    store, run, _ = ingest_dataset(dataset, Settings(), data_dir / path.stem)
    questions = list(dataset.questions)
    retriever = Retriever(with_precomputed_queries(store, [q.text for q in questions]), run)
    embeddings = store.embedder.embeddings
    rows, labels, found = [], [], []
    for q in questions:
        hits = retriever.retrieve(q.text, k=k)
        evidence = select_evidence(q.text, hits, embeddings, top=2)
        rows.append(features(q.text, hits, evidence))
        labels.append(q.answerable)
        found.append(bool(q.answerable and first_rank(hits, q)))
    return np.array(rows), np.array(labels), np.array(found)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 3000) -> tuple[np.ndarray, float]:
    """Plain gradient descent on the mean log-loss (standardised inputs): weights, bias."""
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= 0.5 * ((x.T @ (p - y)) / len(y) + l2 * w)
        b -= 0.5 * float(np.mean(p - y))
    return w, b


def caught(scores_dev_answerable: np.ndarray, test_scores: np.ndarray, test_y: np.ndarray, keep: float = 0.9):
    threshold = float(np.quantile(scores_dev_answerable, 1 - keep))
    answerable_below = float(np.mean(test_scores[test_y] < threshold))
    unanswerable_below = float(np.mean(test_scores[~test_y] < threshold))
    return threshold, answerable_below, unanswerable_below


def main() -> None:
    from rag.answer.answerability import FEATURES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, nargs="+")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="print the fitted weights as Python")
    args = parser.parse_args()

    data = {p.stem: collect(p, args.data_dir, args.k) for p in args.sets}
    dev = {name: np.arange(len(y)) % 2 == 0 for name, (_, y, _) in data.items()}
    x_dev = np.concatenate([x[dev[n]] for n, (x, _, _) in data.items()])
    y_dev = np.concatenate([y[dev[n]] for n, (_, y, _) in data.items()]).astype(bool)
    mean, std = x_dev.mean(axis=0), x_dev.std(axis=0) + 1e-9
    # Each set weighs the same in the fit, whatever its size.
    weights, bias = fit_logistic((x_dev - mean) / std, y_dev.astype(float))

    def model(x: np.ndarray) -> np.ndarray:
        return (x - mean) / std @ weights + bias

    print(f"{'feature':<22}" + "".join(f"{name + ' caught':>22}" for name in data))
    columns = [(f, lambda x, i=i: x[:, i]) for i, f in enumerate(FEATURES)] + [("logistic model", model)]
    for label, score in columns:
        cells = []
        for name, (x, y, _) in data.items():
            y = y.astype(bool)
            s_dev, s_test = score(x[dev[name]]), score(x[~dev[name]])
            t, a_below, u_below = caught(s_dev[y[dev[name]]], s_test, y[~dev[name]])
            cells.append(f"{u_below:.2f} (ans {a_below:.2f})")
        print(f"{label:<22}" + "".join(f"{c:>22}" for c in cells))
    for name, (x, y, found) in data.items():
        y = y.astype(bool)
        t = float(np.quantile(model(x_dev[y_dev]), 0.1))
        s = model(x[~dev[name]])
        yt, ft = y[~dev[name]], found[~dev[name]]
        print(f"{name}: test answerable not confident {np.mean(s[yt] < t):.2f} (gold retrieved: {np.mean(s[ft] < t):.2f}),"
              f" unanswerable not confident {np.mean(s[~yt] < t):.2f}; n={len(yt)}")
    if args.write:
        print(f"MEAN = {np.round(mean, 4).tolist()}\nSCALE = {np.round(std, 4).tolist()}\n"
              f"WEIGHTS = {np.round(weights, 4).tolist()}\nBIAS = {round(bias, 4)}\n"
              f"THRESHOLD = {round(float(np.quantile(model(x_dev[y_dev]), 0.1)), 4)}")


if __name__ == "__main__":
    main()
