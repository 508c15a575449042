"""Example questions for the empty chat, drawn from the loaded documents without an LLM.

In order of preference: questions the documents ask themselves (FAQ headings and lines ending in
"?"), then "What does NAME say about HEADING?" from section headings, then "What does NAME say
about …?" from a document's first sentence. At most one per document while others remain, so
the examples show the range of what is loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

_QUESTION = re.compile(r"(?:^|(?<=[.!\n]))\s*([A-Z][^?.!\n]{10,110}\?)")
_SKIP_HEADINGS = {"introduction", "contents", "table of contents", "appendix", "notes", "summary", "overview"}


def _candidates(source: str, text: str, heading: str | None) -> Iterable[tuple[int, str]]:
    name = Path(source).stem.replace("-", " ").replace("_", " ")
    filename = Path(source).name
    for h in (heading or "").split(" > "):
        h = h.strip()
        if h.endswith("?") and 10 <= len(h) <= 120:
            yield 0, h
    for m in _QUESTION.finditer(text):
        yield 0, " ".join(m.group(1).split())
    levels = [h.strip() for h in (heading or "").split(" > ") if h.strip()]
    last = levels[-1].rstrip(":") if len(levels) > 1 else ""  # a lone top-level heading is the title
    if last and not last.endswith("?") and 3 <= len(last) <= 60 and last.lower() not in _SKIP_HEADINGS \
            and ":" not in last:
        yield 1, f"What does the {name} say about {last[0].lower() + last[1:]}?"
    first = re.split(r"(?<=[.!?])\s", " ".join(text.split()), maxsplit=1)[0]
    words = re.findall(r"[A-Za-z][\w'-]*", first)
    if 4 <= len(words):
        yield 2, f"What does {filename} say about “{' '.join(words[:5])}…”?"


def example_questions(chunks: Iterable[tuple[str, str, dict]], n: int = 3) -> list[str]:
    """Up to n example questions from (source, text, metadata) chunks, deterministic."""
    found: dict[str, list[tuple[int, int, str]]] = {}
    for order, (source, text, meta) in enumerate(chunks):
        for rank, question in _candidates(source, text or "", (meta or {}).get("heading")):
            found.setdefault(source, []).append((rank, order, question))
    picked: list[str] = []
    used: set[str] = set()
    pools = {s: sorted(c) for s, c in sorted(found.items())}
    while len(picked) < n and any(pools.values()):
        heads = sorted((pool[0], s) for s, pool in pools.items() if pool)
        fresh = [h for h in heads if h[1] not in used] or heads  # a document not used yet, if any
        (_, _, question), source = fresh[0]
        pools[source].pop(0)
        if question not in picked:
            picked.append(question)
            used.add(source)
    return picked
