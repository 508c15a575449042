"""Scoring: does a retrieved chunk hold a gold answer, retrieval recall/MRR, and SQuAD's answer
metrics (exact match and token F1 after the official normalisation).

A question is found at rank r when a gold answer string appears, case-insensitively and ignoring
whitespace differences, in the r-th retrieved chunk (SQuAD's answer_start offsets are not used:
some are wrong). Retrieval metrics are over the answerable questions: recall@j for j = 1..k (of
the same top-k list) and MRR@k (1/rank of the first chunk holding an answer, 0 when none of the k
does).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from rag.app.evaluation.datasets import Question

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    text = re.sub(r"\[\d+\]", " ", text)  # citation markers are not part of the answer
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(prediction: str, golds: Iterable[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def f1(prediction: str, golds: Iterable[str]) -> float:
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if common:
            precision, recall = common / len(pred), common / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains(prediction: str, golds: Iterable[str]) -> float:
    """1.0 when a gold answer appears inside the prediction: fairer to sentence-long answers."""
    pred = normalize_answer(prediction)
    return float(any(normalize_answer(g) and normalize_answer(g) in pred for g in golds))




def normalize(text: str) -> str:
    """Lowercase, whitespace runs collapsed: how answers are matched against chunk text."""
    return " ".join(text.split()).lower()


def contains_answer(chunk_text: str, question: Question) -> bool:
    text = normalize(chunk_text)
    return any(normalize(a) in text for a in question.answers)


def first_rank(hits, question: Question) -> int | None:
    """Rank of the first hit holding a gold answer, None when none does."""
    return next((h.rank for h in hits if contains_answer(h.text, question)), None)


@dataclass(frozen=True)
class RetrievalScores:
    k: int
    questions: int
    recall_by_k: list[float]  # recall@1 .. recall@k
    mrr: float

    @classmethod
    def from_ranks(cls, ranks: list[int | None], k: int) -> RetrievalScores:
        n = len(ranks)
        found = [r for r in ranks if r is not None and r <= k]
        curve = [sum(r <= j for r in found) / n if n else 0.0 for j in range(1, k + 1)]
        return cls(k, n, curve, sum(1 / r for r in found) / n if n else 0.0)

    def to_json(self) -> dict:
        return {
            "k": self.k,
            "questions": self.questions,
            "recall_at_1": self.recall_by_k[0],
            "recall_at_k": self.recall_by_k[-1],
            "mrr": self.mrr,
            "recall_by_k": self.recall_by_k,
        }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_answers(results: list[tuple[Question, Any]]) -> dict:
    """EM/F1/contains over answerable questions that were answered (and, for comparison with
    bench/answer_quality.py, over all answerable ones with refusals scoring 0), refusal rates."""
    answerable = [(q, a) for q, a in results if q.answerable]
    unanswerable = [(q, a) for q, a in results if not q.answerable]
    answered = [(q, a) for q, a in answerable if not a.refused]

    def scores(pairs, refused_as_zero: bool) -> dict:
        def text(a):
            return "" if a.refused and refused_as_zero else a.answer

        return {
            "exact_match": _mean([exact_match(text(a), q.answers) for q, a in pairs]),
            "f1": _mean([f1(text(a), q.answers) for q, a in pairs]),
            "contains": _mean([contains(text(a), q.answers) for q, a in pairs]),
        }

    return {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "answered": len(answered),
        **scores(answered, False),
        "all_answerable": scores(answerable, True),
        "refusal_rate": _mean([float(a.refused) for _, a in results]),
        "false_refusal_rate": _mean([float(a.refused) for _, a in answerable]),
        "correct_refusal_rate": _mean([float(a.refused) for _, a in unanswerable]),
    }
def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def evidence_report(rows: list[dict]) -> dict:
    """Evidence-first answer metrics over per-question rows with keys `answerable`, `answers`
    (gold strings), `answer`, `status` ("answered" | "unsure" | "refused"), `quotes` (the
    citations' quotes), `first_token` and `total` (seconds, None when no LLM was called).

    Answer/quote contains gold, EM and F1 are over the answerable questions (whatever their
    status: an unsure answer quoting the right sentence contains the gold answer); EM and F1 also
    over the answerable questions answered. Status rates are given for answerable and unanswerable
    questions separately."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in answerable if r["status"] == "answered"]

    def rates(group: list[dict]) -> dict:
        return {s: _mean([float(r["status"] == s) for r in group]) for s in ("answered", "unsure", "refused")}

    first = [r["first_token"] for r in rows if r.get("first_token") is not None]
    total = [r["total"] for r in rows if r.get("total") is not None]
    return {
        "answer_contains_gold": _mean([contains(r["answer"], r["answers"]) for r in answerable]),
        "quote_contains_gold": _mean([contains(" ".join(r["quotes"]), r["answers"]) for r in answerable]),
        "exact_match": _mean([exact_match(r["answer"], r["answers"]) for r in answerable]),
        "f1": _mean([f1(r["answer"], r["answers"]) for r in answerable]),
        "answered_exact_match": _mean([exact_match(r["answer"], r["answers"]) for r in answered]),
        "answered_f1": _mean([f1(r["answer"], r["answers"]) for r in answered]),
        "answered_contains_gold": _mean([contains(r["answer"], r["answers"]) for r in answered]),
        "answerable_status": rates(answerable),
        "unanswerable_status": rates(unanswerable),
        "first_token_p50": _percentile(first, 0.5),
        "first_token_p90": _percentile(first, 0.9),
        "seconds_per_answer": _mean(total),
    }
