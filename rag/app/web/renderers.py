"""What the page shows as text: the upload results table, the documents table's columns and
cells, the backend status. Names and reasons are the documents' text, rendered inert (markup.py)."""

from __future__ import annotations

from rag.app import policy
from rag.app.markup import inert_line
from rag.schema import FileResult
from rag.settings import Settings

#: Status in words: emoji render as empty boxes in Debian's Chromium.
STATUS_WORDS = {"added": "added", "updated": "updated", "unchanged": "unchanged", "failed": "FAILED"}


# --- rendering --------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return inert_line(text)  # also escapes "|"; file names and reasons never render as Markdown


def render_results(results: list[FileResult]) -> str:
    if not results:
        return ""
    rows = ["| file | result | chunks | read | seconds | reason |", "|---|---|---|---|---|---|"]
    for r in results:
        read = r.read.describe() if r.read else ""
        note = r.error or (r.read.warning if r.read else None) or ""
        seconds = f"{r.seconds:.1f}" if r.status != "failed" else ""
        rows.append(f"| {_cell(r.path)} | {STATUS_WORDS[r.status]} | {r.chunks or ''} | {_cell(read)} | {seconds} "
                    f"| {_cell(note)} |")
    return "\n".join(rows)


def backend_status(settings: Settings) -> str:
    local, remote = policy.describe_backends_for_visitors(settings)  # no URL or path in public mode
    mode = "public: your uploads are private to your session" if settings.public else "private"
    return f"- {local}\n- {remote}\n- mode: {mode}"


def doc_headers(public: bool) -> list[str]:
    """The documents table's columns; the last one holds each deletable row's "delete"."""
    return ["document", "chunks", "read", *(["access"] if public else []), ""]


def read_cell(doc) -> str:
    """What reading the document found, with its warning (e.g. the OCR page limit was reached)."""
    if doc.read is None:
        return ""
    return doc.read.describe() + (f"; {doc.read.warning}" if doc.read.warning else "")
