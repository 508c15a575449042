"""SQuAD's answer metrics: exact match and token F1 after the official normalisation."""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable

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


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


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
