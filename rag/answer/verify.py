"""Checking an answer sentence against the evidence it rests on.

A claim is supported by an evidence text only when all of these hold:

1. every number in it (amounts, years, times: "4,000", "1868", "23:40") occurs in the evidence;
2. every capitalised name in it (not a sentence-initial function word) occurs in the evidence;
3. its own content words (those not in the question) are all in the evidence (`max_novel` = 0:
   a swapped span of the same kind - "distilled water" for "vinegar" - brings new words, and
   small models answer by copying, so a correct answer brings none); and the question's words it
   restates are mostly there too (one evidence sentence must carry the claim, not bits of two);
4. its meaning is close: the MiniLM cosine of claim and evidence is at least `min_similarity`
   (a short phrase is compared together with the question it answers).

Words of the question count as given: an answer that repeats the question's own words is not
unsupported for that. One shared word is never enough (the old check accepted that).
The thresholds are calibrated by bench/support_check.py on both eval sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.answer.words import content_words, names, numbers, words as _words

#: Share of the claim's own content words (beyond the question's) that may be missing from the evidence.
MAX_NOVEL = 0.0
#: Least cosine between claim (with the question, when the claim is a short phrase) and evidence.
MIN_SIMILARITY = 0.30
#: A claim with fewer content words than this is a phrase: it is compared with the question prepended.
PHRASE_WORDS = 5

@dataclass(frozen=True)
class Verdict:
    supported: bool
    reason: str  # why not, for the logs and tests; "" when supported
    similarity: float


def _cosine(embeddings: Any, a: str, b: str) -> float:
    va, vb = (np.asarray(v, dtype=np.float64) for v in embeddings.embed_documents([a, b]))
    denominator = np.linalg.norm(va) * np.linalg.norm(vb)
    return float(va @ vb / denominator) if denominator else 0.0


def verify(
    claim: str,
    evidence: str,
    question: str,
    embeddings: Any,
    *,
    context: str = "",
    max_novel: float = MAX_NOVEL,
    min_similarity: float = MIN_SIMILARITY,
) -> Verdict:
    """Whether `evidence` supports `claim` (an answer sentence, markers removed) for `question`.

    `context` (the passage the evidence sentence is from) may supply names: "The Warsaw Stock
    Exchange (WSE)" is one sentence, "established in 1817" the next. Numbers and every other word
    must be in the evidence sentence itself."""
    claim = re.sub(r"\[\d+\]", " ", claim).strip()
    if not _words(claim):
        return Verdict(False, "empty claim", 0.0)
    given = numbers(question) | numbers(evidence)
    missing = sorted(numbers(claim) - given)
    if missing:
        return Verdict(False, f"number {missing[0]} is not in the evidence", 0.0)
    seen = _words(evidence) | _words(question) | _words(context)
    unknown = sorted(n for n in names(claim) if n not in seen)
    if unknown:
        return Verdict(False, f"name {unknown[0]!r} is not in the evidence", 0.0)
    asked = content_words(question)
    words = content_words(claim)
    own = words - asked
    novel = own - content_words(evidence) - (names(claim) & _words(context))
    if own and len(novel) / len(own) > max_novel:
        return Verdict(False, f"{len(novel)} of {len(own)} words are not in the evidence", 0.0)
    # Restating the question is free only up to a point: "the lens prisms are cleaned every 20
    # seconds" takes "20 seconds" from a sentence about the lens turning, which says nothing of
    # prisms or cleaning. The claim must rest on one sentence that has most of it.
    restated = (words & asked) - content_words(evidence)
    if len(restated) > max(1, len(words) // 4):
        return Verdict(False, f"the evidence lacks {len(restated)} of the question's words the claim uses", 0.0)
    text = claim if len(content_words(claim)) >= PHRASE_WORDS else f"{question} {claim}"
    if embeddings is None:  # no embedder to ask: the lexical checks alone
        return Verdict(True, "", 1.0)
    similarity = _cosine(embeddings, text, evidence)
    if similarity < min_similarity:
        return Verdict(False, f"meaning too far from the evidence (cosine {similarity:.2f})", similarity)
    return Verdict(True, "", similarity)
