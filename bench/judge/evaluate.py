"""Measure the shipped judge (int8 ONNX, through rag.answer.judge) per set, at a few thresholds.

    python bench/judge/evaluate.py --model rag/models/judge.onnx --dev /work/judge-data/pairs/dev.jsonl \
        --recipe /tmp/judge/xquad-recipe.json /tmp/judge/covid-recipe.json

- intrinsic, on the train source's held-out articles (dev.jsonl, never trained on): AUC, accuracy,
  recall of answering sentences, rejection of the plausible-answer sentences of unanswerable
  questions and of the other sentences;
- per recipe set (bench/judge/recipe.py): every sentence of the window is scored (context: the
  sentence before it); an unanswerable question is caught when no sentence reaches the threshold,
  an answerable one kept when its answer sentence does. "top is answer": the best-scored sentence
  is the answer sentence; "span has gold": the span of that sentence holds a gold answer. AUC
  (threshold-free): the answerable questions' answer sentence against each unanswerable kind's best
  sentence; with --baseline the same for the chain's own score (cosine + 0.5 x keyword overlap).
- timing: the judge on 16 sentences of one question (p50 / p90 wall and CPU seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import Judge  # noqa: E402

THRESHOLDS = (0.3, 0.5, 0.7)


class Baseline:
    """The chain's own sentence score without the judge: cosine (packaged embedder) + 0.5 x keyword overlap."""

    def __init__(self) -> None:
        from rag.embeddings import make_embedder
        from rag.settings import Settings

        self.embeddings = make_embedder(Settings()).embeddings

    def score(self, question: str, sentences: list[str], contexts=None) -> list[float]:
        from rag.answer.evidence import Sentence, score_sentences

        got = score_sentences(question, [Sentence(1, 0, len(t), t) for t in sentences], self.embeddings)
        return [g.score for g in got]


def _auc(scores: list[float], labels: list[int]) -> float:
    pos = sorted(s for s, y in zip(scores, labels) if y)
    neg = sorted(s for s, y in zip(scores, labels) if not y)
    import bisect

    wins = sum(bisect.bisect_left(neg, p) + 0.5 * (bisect.bisect_right(neg, p) - bisect.bisect_left(neg, p)) for p in pos)
    return wins / (len(pos) * len(neg)) if pos and neg else float("nan")


def intrinsic(judge: Judge, path: Path, baseline: Baseline | None = None) -> None:
    rows = [json.loads(line) for line in open(path)]
    probs = [0.0] * len(rows)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r["q"], []).append(i)
    for q, idx in groups.items():  # one batch per question
        for i, p in zip(idx, judge.score(q, [rows[i]["sent"] for i in idx], [rows[i].get("ctx", "") for i in idx])):
            probs[i] = p
    labels = [r["label"] for r in rows]
    print(f"intrinsic dev ({path}): {len(rows)} pairs, {len({(r['article'], r['q']) for r in rows})} questions, "
          f"articles {sorted({r['article'] for r in rows})}")
    print(f"  AUC {_auc(probs, labels):.3f}; answer sentence vs plausible-answer sentence: AUC "
          f"{_auc([p for p, r in zip(probs, rows) if r['kind'] in ('answer', 'plausible')], [r['label'] for r in rows if r['kind'] in ('answer', 'plausible')]):.3f}")
    if baseline is not None:
        base = [0.0] * len(rows)
        for q, idx in groups.items():
            for i, b in zip(idx, baseline.score(q, [rows[i]["sent"] for i in idx])):
                base[i] = b
        sel = [r["kind"] in ("answer", "plausible") for r in rows]
        print(f"  baseline (cosine + 0.5 overlap) AUC {_auc(base, labels):.3f}; answer vs plausible AUC "
              f"{_auc([b for b, k in zip(base, sel) if k], [y for y, k in zip(labels, sel) if k]):.3f}")
    print(f"  {'threshold':>9} {'accuracy':>9} {'answer recall':>14} {'plausible rejected':>19} {'other rejected':>15}")
    for t in THRESHOLDS:
        acc = sum((p >= t) == bool(y) for p, y in zip(probs, labels)) / len(rows)
        by = {k: [p for p, r in zip(probs, rows) if r["kind"] == k] for k in ("answer", "plausible", "other")}
        rec = sum(p >= t for p in by["answer"]) / max(1, len(by["answer"]))
        rej = sum(p < t for p in by["plausible"]) / max(1, len(by["plausible"]))
        oth = sum(p < t for p in by["other"]) / max(1, len(by["other"]))
        print(f"  {t:>9.2f} {acc:>9.3f} {rec:>14.3f} {rej:>19.3f} {oth:>15.3f}")
    print(f"  n: answer {sum(r['kind'] == 'answer' for r in rows)}, plausible {sum(r['kind'] == 'plausible' for r in rows)}, "
          f"other {sum(r['kind'] == 'other' for r in rows)}")


def recipe(judge: Judge, path: Path, baseline: Baseline | None = None) -> None:
    records = json.load(open(path))
    scored = []
    for r in records:
        win = r["window"]
        out = judge.judge(r["question"], win, [""] + win[:-1])
        scored.append((r, out))
    base = [baseline.score(r["question"], r["window"]) for r in records] if baseline else None
    kinds = list(dict.fromkeys(r["kind"] for r in records))
    print(f"recipe set {path.name}: {len(records)} questions")
    print(f"  {'kind':<11}{'n':>4}" + "".join(f"{'t=' + str(t):>9}" for t in THRESHOLDS) + "   (unanswerable: caught; answerable: kept)")
    for kind in kinds:
        rows = [(r, out) for r, out in scored if r["kind"] == kind]
        cells = []
        for t in THRESHOLDS:
            if kind == "answerable":
                ok = sum(out[r["answer_idx"]][0] >= t for r, out in rows)
            else:
                ok = sum(max(p for p, _ in out) < t for r, out in rows)
            cells.append(f"{ok / len(rows):>9.3f}")
        line = f"  {kind:<11}{len(rows):>4}" + "".join(cells)
        if kind != "answerable":  # threshold-free: the answerable questions' answer sentence vs this kind's best
            ans_p = [out[r["answer_idx"]][0] for r, out in scored if r["kind"] == "answerable"]
            una_p = [max(p for p, _ in out) for r, out in rows]
            line += f"   AUC {_auc(ans_p + una_p, [1] * len(ans_p) + [0] * len(una_p)):.3f}"
            if base:
                ans_b = [b[r["answer_idx"]] for (r, _), b in zip(scored, base) if r["kind"] == "answerable"]
                una_b = [max(b) for (r, _), b in zip(scored, base) if r["kind"] == kind]
                line += f"  baseline AUC {_auc(ans_b + una_b, [1] * len(ans_b) + [0] * len(una_b)):.3f}"
        print(line)
    ans = [(r, out) for r, out in scored if r["kind"] == "answerable"]
    if ans:
        top = [max(range(len(out)), key=lambda i: out[i][0]) for _, out in ans]
        top_ok = sum(i == r["answer_idx"] for i, (r, _) in zip(top, ans)) / len(ans)
        span_ok = 0
        for r, out in ans:
            sp = out[r["answer_idx"]][1]
            text = r["window"][r["answer_idx"]][sp[0] : sp[1]] if sp else ""
            span_ok += any(g.lower() in text.lower() or (text and text.lower() in g.lower()) for g in r["answers"])
        print(f"  answerable: top-scored sentence is the answer sentence {top_ok:.3f}; "
              f"span of the answer sentence overlaps gold (holds it or lies in it) {span_ok / len(ans):.3f}")


def timing(judge: Judge, path: Path, n: int = 30) -> None:
    records = [r for r in json.load(open(path)) if len(r["window"]) >= 4][:n]
    judge.score("warm up", ["a sentence"])
    walls, cpus = [], []
    for r in records:
        sents = (r["window"] * 4)[:16]
        t0, c0 = time.perf_counter(), time.process_time()
        judge.score(r["question"], sents, [""] + sents[:-1])
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    walls.sort()
    cpus.sort()
    print(f"timing: 16 sentences per question, {len(walls)} questions, {judge.threads} threads: wall p50 "
          f"{walls[len(walls) // 2] * 1000:.0f} ms p90 {walls[int(len(walls) * 0.9)] * 1000:.0f} ms; "
          f"CPU p50 {cpus[len(cpus) // 2] * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--dev", type=Path)
    ap.add_argument("--recipe", type=Path, nargs="*", default=[])
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--baseline", action="store_true", help="also the chain's cosine + overlap score, for AUC")
    args = ap.parse_args()
    judge = Judge(args.model)
    baseline = Baseline() if args.baseline else None
    if args.dev:
        intrinsic(judge, args.dev, baseline)
    for path in args.recipe:
        recipe(judge, path, baseline)
    if args.recipe and not args.no_timing:
        timing(judge, args.recipe[0])


if __name__ == "__main__":
    main()
