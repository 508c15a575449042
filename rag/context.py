"""A chunk's *indexed text*: what is embedded and keyword-indexed, as opposed to what is shown.

A question often restates a section's heading ("How do I reset the alarm?") while the section's
body never repeats it; a heading kept only in metadata is invisible to both the embedder and
BM25. So what is indexed is the document's title and the chunk's heading path in front of the
chunk's own text. What is stored as the chunk's text, shown and quoted, stays the chunk's own text,
so quote offsets into it stay exact. Chunking counts the whole indexed text against the
embedder's token limit (ingest.chunking).

Metadata used: `title` (the document's own title, or its file name made readable), `heading`
(the heading path "Install > Linux"), `sheet` (a spreadsheet's sheet name).
"""

from __future__ import annotations

import re

#: Changes whenever the indexed text's form changes: part of ingest's chunking fingerprint, so a
#: collection indexed the old way is re-indexed file by file on the next ingest.
CONTEXT_VERSION = "ctx1"


def readable_title(file_name: str) -> str:
    """A file name as a title: "visitor-faq.html" -> "visitor faq"; "" when it says nothing
    (no letters, as in "000.txt")."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    title = " ".join(re.sub(r"[_\-.]+", " ", stem).split())
    return title if re.search(r"[^\W\d_]", title) else ""


#: Characters kept of each prefix line (a heading path keeps its end, the most specific part), so
#: the prefix never takes more than about half of a chunk's token budget.
MAX_PART_CHARS = 150


def _part(metadata: dict, key: str) -> str:
    value = " ".join(str(metadata.get(key) or "").split())
    if len(value) > MAX_PART_CHARS:
        value = "…" + value[-MAX_PART_CHARS:] if key == "heading" else value[:MAX_PART_CHARS] + "…"
    return value


def context_prefix(metadata: dict) -> str:
    """The lines put before a chunk's text when it is indexed; "" when there is nothing to add."""
    parts: list[str] = []
    for key in ("title", "sheet", "heading"):
        value = _part(metadata, key)
        if value and not any(value.lower() == p.lower() for p in parts):
            parts.append(value)
    return "\n".join(parts)


def heading_label(metadata: dict) -> str:
    """The chunk's section heading path as it is indexed ("5 The anchor winch > 5.22 Why does
    the anchor winch run slower in winter?"), without the document title; "" for a chunk under no
    heading. Embedded on its own for retrieval's heading ranking (rag.retrieval)."""
    return _part(metadata, "heading")


def indexed_text(text: str, metadata: dict) -> str:
    prefix = context_prefix(metadata)
    return f"{prefix}\n\n{text}" if prefix else text
