"""The citation markers an LLM writes, and the words they are checked with.

- A marker must point at a passage that was in the context: `[7]` with four passages is removed,
  while the answer streams (`MarkerFilter`) and in the final text alike.
- Variants small models write (`[1, 2]`, `[1][2]`, `[Passage 1]`) are normalised to `[1][2]`.
- `content_words` (no stop words) and `SENTENCE` are what rag.verify and the chain check answers
  with; whether a cited passage supports a sentence is rag.verify's job.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(?:passages?\s*)?(\d+(?:\s*(?:,|and|&)\s*\d+)*)\]", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
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


# A sentence ends at . ! or ? followed by white space or the end (not inside "2.1"), or a newline.
SENTENCE = re.compile(r"[^\n]*?(?:[.!?]+(?=\s|$)|\n|$)")
