"""Checking the citations an LLM writes, so the ones users see can be trusted.

- A marker must point at a passage that was in the context: `[7]` with four passages is removed,
  while the answer streams (`MarkerFilter`) and in the final text alike.
- Variants small models write (`[1, 2]`, `[1][2]`, `[Passage 1]`) are normalised to `[1][2]`.
- A cited passage must share content with the sentence that cites it. "Content" excludes stop
  words and the question's own words: an answer that repeats the question ("Harbour Point was
  built in 1868 [2]") is supported by [2] only if [2] has something beyond the question, such as
  1868. Every number in the claim must appear in the passage too: numbers are what small models
  get wrong most ("a 200-watt bulb" cited to a passage saying 1000-watt). A citation that fails
  this is kept but flagged `supported=False`.
- Small local models often cite nothing at all. Then each sentence is attributed to the passage
  it shares the most content with (at least two words, or one for a short claim), the marker is
  added, and the citation says `inferred=True`: checked by us, not claimed by the model.
"""

from __future__ import annotations

import re
from typing import Iterator

from rag.schema import Citation, SearchHit

_MARKER = re.compile(r"\[(?:passages?\s*)?(\d+(?:\s*(?:,|and|&)\s*\d+)*)\]", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours also per via
    passage passages document documents according""".split()
)


def content_words(text: str) -> set[str]:
    words = set()
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS or (len(word) < 3 and not word.isdigit()):
            continue
        # Light stemming, enough for plural and tense to match: "cleaned" ~ "cleaning" ~ "clean".
        for suffix in ("ing", "ed", "es", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        words.add(word)
    return words


def supports(claim: set[str], passage: set[str]) -> int:
    """How many claim words the passage shares; 0 when a number of the claim is not in it."""
    numbers = {w for w in claim if any(ch.isdigit() for ch in w)}
    if not numbers <= passage:
        return 0
    return len(claim & passage)


def normalise_markers(text: str, n_passages: int) -> str:
    """Rewrite markers as [n][m]; drop numbers that point at no passage."""

    cleaned = _normalise_fragment(text, n_passages)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()


class MarkerFilter:
    """Streams text through `normalise_markers`: holds back a possible marker until it closes."""

    def __init__(self, n_passages: int):
        self.n = n_passages
        self._pending = ""

    def feed(self, token: str) -> str:
        self._pending += token
        start = self._pending.rfind("[")
        if start == -1 or "]" in self._pending[start:] or len(self._pending) - start > 24:
            out, self._pending = self._pending, ""
            return _normalise_fragment(out, self.n)
        out, self._pending = self._pending[:start], self._pending[start:]
        return _normalise_fragment(out, self.n)

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return _normalise_fragment(out, self.n)


def _normalise_fragment(text: str, n_passages: int) -> str:
    return _MARKER.sub(
        lambda m: "".join(f"[{n}]" for n in map(int, re.findall(r"\d+", m.group(1))) if 1 <= n <= n_passages),
        text,
    )


def sentences_with_markers(text: str) -> Iterator[tuple[str, list[int]]]:
    for sentence in _SENTENCE_END.split(text):
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        if numbers:
            yield re.sub(r"\[\d+\]", " ", sentence), numbers


# A sentence ends at . ! or ? followed by white space or the end (not inside "2.1"), or a newline.
SENTENCE = re.compile(r"[^\n]*?(?:[.!?]+(?=\s|$)|\n|$)")


def attribute(answer: str, hits: list[SearchHit], question: str) -> str:
    """Add [n] to each sentence of a marker-free answer that one passage clearly supports."""
    if re.search(r"\[\d+\]", answer):
        return answer
    asked = content_words(question)
    passage_words = [content_words(h.text) for h in hits]
    out, last = [], 0
    for match in SENTENCE.finditer(answer):
        sentence = match.group(0)
        if not sentence.strip():
            continue
        words = content_words(sentence)
        claim = (words - asked) or words
        shared = [supports(claim, pw) for pw in passage_words]
        best = max(range(len(hits)), key=lambda i: shared[i], default=None)
        out.append(answer[last : match.start()])
        need = 1 if len(claim) <= 2 else 2
        if best is not None and shared[best] >= need:
            body = sentence.rstrip()
            stop = len(body.rstrip(".!?"))
            sentence = f"{body[:stop]} [{best + 1}]{body[stop:]}{sentence[len(body):]}"
        out.append(sentence)
        last = match.end()
    out.append(answer[last:])
    return "".join(out)


def check_citations(
    answer: str, hits: list[SearchHit], question: str, inferred: bool = False
) -> list[Citation]:
    """The passages `answer` cites, in order of first citation, each flagged for support."""
    asked = content_words(question)
    support: dict[int, bool] = {}
    for sentence, numbers in sentences_with_markers(answer):
        words = content_words(sentence)
        claim = (words - asked) or words
        for n in numbers:
            shared = supports(claim, content_words(hits[n - 1].text))
            support[n] = support.get(n, False) or shared > 0
    return [
        Citation(
            n=n,
            source=hits[n - 1].source,
            page=hits[n - 1].page,
            chunk_id=hits[n - 1].chunk_id,
            text=hits[n - 1].text,
            score=hits[n - 1].score,
            supported=ok,
            inferred=inferred,
        )
        for n, ok in support.items()
    ]
