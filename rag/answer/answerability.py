"""Does the evidence answer the question at all? A calibrated confidence, decided before any LLM call.

A passage can be on topic without holding the answer (SQuAD 2.0's unanswerable questions: the
answer-bearing sentence is gone, the rest of the paragraph is still there). The cosine of the best
sentence alone separates those poorly (bench/answerability.py). What separates them better is a
few plain features of the best evidence sentence: how close it is, how many of the question's
words it has, and whether it holds the kind of thing asked for (a number for "how many" and
"when", a name for "who" and "where") beyond the question's own words. A logistic model over
them, fitted on the dev halves of both eval sets' unanswerable variants, gives `confidence()`;
below `THRESHOLD` (chosen so that 90% of answerable dev questions pass) the chain answers "not
sure" and quotes the evidence instead of asking the model.
"""

from __future__ import annotations

import re

from rag.answer.evidence import Sentence, keyword_overlap
from rag.answer.words import content_words, names, numbers
from rag.schema import SearchHit

FEATURES = (
    "evidence_score",
    "sentence_overlap",
    "passage_overlap",
    "gap_to_second",
    "passage_cosine",
    "has_asked_kind",
    "new_words",
)

_WHEN_QUESTION = re.compile(r"^\s*when\b|\bwhen (was|were|did|does|do|is|are|will|can|should|has|had)\b", re.IGNORECASE)
_TIME_WORDS = frozenset(
    "daily weekly monthly yearly annually hourly morning afternoon evening night noon midnight spring summer "
    "autumn fall winter before after during until since ago today tomorrow yesterday dawn dusk season century "
    "decade year month week day".split()
)
_NUMBER_QUESTION = re.compile(
    r"\b(how (many|much|long|old|far|large|big|high|tall|fast)|what (year|date|time|percentage|age|day|month|century|decade)"
    r"|which (year|date|century|decade)|in what year|what is the (number|population|size|length|height|rate|percentage))\b",
    re.IGNORECASE,
)
_NAME_QUESTION = re.compile(r"\b(who|whom|whose|where|which (country|city|company|team|person|state|university))\b", re.IGNORECASE)

# Fitted by `python bench/answerability.py ... --write` (see its docstring for the command and data)
# on the default embedder's cosines (int8 recipe 3); a change of embedder calls for a refit.
MEAN = [0.9106, 0.5704, 0.64, 0.1705, 0.5223, 0.9429, 0.7937]
SCALE = [0.2194, 0.2604, 0.2532, 0.1725, 0.1473, 0.232, 0.1373]
WEIGHTS = [0.3788, 0.1812, 0.4614, 0.4541, 0.0336, 0.2668, -0.1563]
BIAS = 0.4093
THRESHOLD = -0.6058
#: Log-odds above which the evidence surely answers (probability 0.5): then, when the model's draft
#: does not check out, the best sentence itself is the answer; between THRESHOLD and SURE only a
#: verified draft is, else "not sure". Not tuned: bench/answer_policy.py prints the curve.
SURE = 0.0


def has_asked_kind(question: str, sentence: str) -> float:
    """1 when the sentence holds what the question asks for, beyond the question's own words: a
    number for how many/what year, a name for who/where, a number, name or word of time for when;
    1 for any other question."""
    sentence = re.sub(r"\[\d+\]", " ", sentence)  # a citation marker is not a number
    if _WHEN_QUESTION.search(question):  # a number, a name ("Tuesday", "March") or a word of time
        said = re.findall(r"[a-z]+", sentence.lower())
        return float(bool(numbers(sentence) - numbers(question) or names(sentence) - names(question)
                          - content_words(question) or _TIME_WORDS.intersection(said)))
    if _NUMBER_QUESTION.search(question):
        return float(bool(numbers(sentence) - numbers(question)))
    if _NAME_QUESTION.search(question):
        return float(bool(names(sentence) - names(question) - content_words(question)))
    return 1.0


def features(question: str, hits: list[SearchHit], evidence: list[Sentence]) -> list[float]:
    """The FEATURES of the best evidence sentence (all 0 when there is none)."""
    if not evidence:
        return [0.0] * len(FEATURES)
    best = evidence[0]
    asked = content_words(question)
    overlap = keyword_overlap(asked, best.text)
    said = content_words(best.text)
    return [
        best.score,
        overlap,
        keyword_overlap(asked, hits[best.n - 1].text),
        best.score - (evidence[1].score if len(evidence) > 1 else 0.0),
        hits[best.n - 1].score,
        has_asked_kind(question, best.text),
        len(said - asked) / len(said) if said else 0.0,
    ]


def confidence(question: str, hits: list[SearchHit], evidence: list[Sentence]) -> float:
    """The logistic model's log-odds that the evidence answers the question."""
    x = features(question, hits, evidence)
    return sum(w * (v - m) / s for w, v, m, s in zip(WEIGHTS, x, MEAN, SCALE)) + BIAS


