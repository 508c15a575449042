"""Read one file into text *sections* with location metadata: `load_file(path)`.

    from ingest.formats import LOADERS, LoadError, check_file, load_file

`LOADERS` is the one list of what can be ingested (extension -> loader and format name);
`check_file` refuses, before any parsing, what cannot be; `load_file` returns the file's sections
as `Document`s or raises `LoadError` with a reason. What a section is, its metadata keys and the
work bounds per file: `ingest/formats/base.py`, the parser kit every format module shares. One
module per format (pdf, docx, pptx, spreadsheet, html, markdown, text, epub, image), each with
its parser imported on use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from langchain_core.documents import Document

from ingest.formats import docx, epub, html, image, markdown, pdf, pptx, spreadsheet, text
from ingest.formats.base import LoadError, decode_text, detail

__all__ = ["LOADERS", "Loader", "LoadError", "check_file", "decode_text", "load_file"]


@dataclass(frozen=True)
class Loader:
    load: Callable[[Path], list[Document]]
    kind: str  # what a person calls the format, in messages


#: The one list of what can be ingested: extension (lowercase, with the dot) -> loader.
LOADERS: dict[str, Loader] = {
    ".pdf": Loader(pdf.load, "PDF"),
    ".docx": Loader(docx.load, "Word (DOCX)"),
    ".pptx": Loader(pptx.load, "PowerPoint (PPTX)"),
    ".xlsx": Loader(spreadsheet.load_xlsx, "Excel (XLSX)"),
    ".csv": Loader(spreadsheet.load_csv, "CSV"),
    ".html": Loader(html.load, "HTML"),
    ".htm": Loader(html.load, "HTML"),
    ".md": Loader(markdown.load, "Markdown"),
    ".markdown": Loader(markdown.load, "Markdown"),
    ".txt": Loader(text.load, "plain text"),
    ".text": Loader(text.load, "plain text"),
    ".log": Loader(text.load, "plain text"),
    ".rst": Loader(text.load, "plain text"),
    ".epub": Loader(epub.load, "EPUB"),
    ".png": Loader(image.load, "PNG image"),
    ".jpg": Loader(image.load, "JPEG image"),
    ".jpeg": Loader(image.load, "JPEG image"),
    ".tif": Loader(image.load, "TIFF image"),
    ".tiff": Loader(image.load, "TIFF image"),
    ".webp": Loader(image.load, "WebP image"),
}


def check_file(path: Path, max_mb: float | None = None) -> None:
    """Refuse, before any parsing, what cannot be ingested: missing, not a file, unsupported
    type, empty, over `max_mb` (RAG_MAX_FILE_MB), unreadable. Raises LoadError."""
    path = Path(path)
    if not path.exists():
        raise LoadError("file not found (no such file or directory)")
    if not path.is_file():
        raise LoadError("not a regular file")
    ext = path.suffix.lower()
    if ext not in LOADERS:
        supported = ", ".join(sorted(LOADERS))
        raise LoadError(f"unsupported file type '{ext or '(no extension)'}' (supported: {supported})")
    size = path.stat().st_size
    if size == 0:
        raise LoadError("empty file (0 bytes)")
    if max_mb is not None and size > max_mb * 2**20:
        raise LoadError(f"file is {size / 2**20:.1f} MB, over the {max_mb:g} MB limit (RAG_MAX_FILE_MB)")
    if not os.access(path, os.R_OK):
        raise LoadError("permission denied")


def load_file(path: Path) -> list[Document]:
    """Load one file into sections. Raises LoadError (never anything else) on failure."""
    path = Path(path)
    loader = LOADERS.get(path.suffix.lower())
    fmt = loader.kind if loader else "this"
    cause: BaseException | None = None
    try:
        check_file(path)
        docs = loader.load(path)
    except LoadError as exc:
        reason, cause = exc.reason, exc.__cause__
    except OSError as exc:
        reason, cause = f"cannot read file ({exc.strerror or type(exc).__name__})", exc
    except MemoryError as exc:
        reason, cause = "file too large to load into memory", exc
    except RecursionError as exc:
        reason, cause = f"{fmt} structure is too deeply nested", exc
    except Exception as exc:  # a parser bug or an unforeseen malformation
        reason, cause = f"could not parse {fmt} file ({detail(exc)})", exc
    else:
        docs = [d for d in docs if d.page_content.strip()]
        if docs:
            return docs
        reason = f"no text found in this {fmt} file"
    raise LoadError(reason.replace(str(path.resolve()), "file").replace(str(path), "file")) from cause
