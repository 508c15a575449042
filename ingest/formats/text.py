"""Plain text (.txt, .text, .log, .rst): the whole file as one section, decoded by `decode_text`."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from ingest.formats.base import decode_text, doc


def load(path: Path) -> list[Document]:
    text = decode_text(path.read_bytes())
    return [doc(text.strip())] if text.strip() else []
