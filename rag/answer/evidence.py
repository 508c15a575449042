"""Evidence: the sentences of the retrieved passages that answer the question best.

Retrieval finds the right passage far more often than a 270M-parameter model finds the answer
inside four of them: measured on XQuAD-en, the best single sentence of the retrieved passages
holds the gold answer about as often as the best passage, in a tenth of the text. So the answer
is written from a few sentences, and those sentences are what the user is shown as the quote.

Each sentence keeps its character offsets into its chunk's text (`hit.text[start:end] == text`),
so a face can highlight the quote inside the passage. Sentences are scored against the question
by MiniLM cosine plus keyword overlap (the share of the question's content words the sentence
has); `bench/evidence_selection.py` prints what each weighting finds on both eval sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from rag.answer.words import content_words
from rag.schema import SearchHit

#: Weight of keyword overlap next to cosine; chosen with bench/evidence_selection.py.
KEYWORD_WEIGHT = 0.5
#: Sentences shorter than this (in word characters) are headings or debris, not evidence.
MIN_CHARS = 12
#: A line of fewer words than this that does not end like a sentence is a heading ("Climbing the tower").
HEADING_WORDS = 5
#: Evidence sentences scoring more than this below the best are not shown to the model.
MARGIN = 0.25

# Words after which a period does not end a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st prof sr jr vs etc eg ie al fig figs no nos vol approx ca cf inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec mt ft gen col lt sgt".split()
)
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_LIST_OR_HEADING = re.compile(r"\s*(?:#{1,6}\s|[-*•]\s|\d+[.)]\s|\|)")


@dataclass(frozen=True)
class Sentence:
    """One sentence of passage `n` (1-based, as cited): `passage_text[start:end] == text`."""

    n: int
    start: int
    end: int
    text: str
    score: float = 0.0


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, whitespace trimmed.

    A sentence ends at . ! ? before a capital or digit (not after an abbreviation or an initial),
    at a blank line, and at a line break when the next line is a heading, a list item or a table
    row, or the line ends like a sentence; a wrapped line inside a paragraph does not end one.
    """
    cuts = [0]
    for match in _END.finditer(text):
        word = re.search(r"(\w+)\W*$", text[max(0, match.start() - 12) : match.start() + 1])
        if word and text[match.start()] == "." and (
            word.group(1).lower() in _ABBREVIATIONS or (len(word.group(1)) == 1 and word.group(1).isalpha())
        ):
            continue
        cuts.append(match.end())
    for match in re.finditer(r"\n", text):
        before = text[: match.start()].rstrip(" \t")
        after = text[match.end() :]
        if (
            after.lstrip(" \t").startswith("\n")
            or _LIST_OR_HEADING.match(after)
            or _LIST_OR_HEADING.match(before[before.rfind("\n") + 1 :])
            or before.endswith((".", "!", "?", ":", ";"))
            or not after.strip()
        ):
            cuts.append(match.end())
    cuts = sorted(set(cuts)) + [len(text)]
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        s, e = start + lead, end - trail
        if e > s:
            spans.append((s, e))
    return spans


def split_passages(hits: list[SearchHit]) -> list[Sentence]:
    """Every sentence of every passage worth scoring, in passage order."""
    out = []
    for n, hit in enumerate(hits, start=1):
        for start, end in sentence_spans(hit.text):
            piece = hit.text[start:end]
            if len(re.sub(r"\W", "", piece)) >= MIN_CHARS and not piece.lstrip().startswith("#") and not _heading_like(piece):
                out.append(Sentence(n, start, end, piece))
    return out


def _heading_like(piece: str) -> bool:
    return len(piece.split()) < HEADING_WORDS and not piece.rstrip().endswith((".", "!", "?", ":", ";", '"', "”", ")"))


def within_margin(evidence: list[Sentence], margin: float = MARGIN) -> list[Sentence]:
    """The evidence sentences scoring within `margin` of the best (the best always)."""
    return [s for s in evidence if s.score >= evidence[0].score - margin] if evidence else []


def _unit_rows(vectors: Any) -> np.ndarray:
    m = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms


def keyword_overlap(question_words: set[str], sentence: str) -> float:
    """The share of the question's content words that the sentence has."""
    if not question_words:
        return 0.0
    return len(question_words & content_words(sentence)) / len(question_words)


def score_sentences(
    question: str, sentences: list[Sentence], embeddings: Any, keyword_weight: float = KEYWORD_WEIGHT
) -> list[Sentence]:
    """The sentences with `score` = cosine(question, sentence) + keyword_weight * overlap."""
    if not sentences:
        return []
    if embeddings is None:  # keyword overlap alone (a retriever with no embedder, in tests)
        cosine = np.zeros(len(sentences))
    else:
        vectors = _unit_rows(embeddings.embed_documents([question] + [s.text for s in sentences]))
        cosine = vectors[1:] @ vectors[0]
    asked = content_words(question)
    return [
        Sentence(s.n, s.start, s.end, s.text, round(float(c) + keyword_weight * keyword_overlap(asked, s.text), 4))
        for s, c in zip(sentences, cosine)
    ]


def select_evidence(
    question: str, hits: list[SearchHit], embeddings: Any, top: int = 2, keyword_weight: float = KEYWORD_WEIGHT
) -> list[Sentence]:
    """The `top` best sentences of the passages, best first."""
    scored = score_sentences(question, split_passages(hits), embeddings, keyword_weight)
    return sorted(scored, key=lambda s: -s.score)[:top]


def by_passage(evidence: list[Sentence]) -> Iterator[tuple[int, list[Sentence]]]:
    """Evidence grouped by passage number, passages in order of their best sentence, sentences in
    document order (so that two sentences of one passage read as they were written)."""
    order: list[int] = []
    groups: dict[int, list[Sentence]] = {}
    for s in evidence:
        if s.n not in groups:
            order.append(s.n)
        groups.setdefault(s.n, []).append(s)
    for n in order:
        yield n, sorted(groups[n], key=lambda s: s.start)


def quote_span(passage_text: str, sentences: list[Sentence]) -> tuple[int, int, str]:
    """(start, end, quote): the smallest stretch of the passage covering these sentences."""
    start = min(s.start for s in sentences)
    end = max(s.end for s in sentences)
    return start, end, passage_text[start:end]
