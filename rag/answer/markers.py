"""The citation markers an LLM writes.

- A marker must point at a passage that was in the context: `[7]` with four passages is removed,
  while the answer streams (`MarkerFilter`) and in the final text alike.
- Variants small models write (`[1, 2]`, `[1][2]`, `[Passage 1]`) are normalised to `[1][2]`.
Whether a cited passage supports a sentence is rag.answer.verify's job.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(?:passages?\s*)?(\d+(?:\s*(?:,|and|&)\s*\d+)*)\]", re.IGNORECASE)
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
