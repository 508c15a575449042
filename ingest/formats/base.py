"""The parser kit every format module shares: the error, the work bounds, and the section builder.

A loader turns one file into a list of `Document`s, each one *section* of the file: it never
crosses a page/slide or heading boundary, and paragraphs inside it are separated by a blank
line ("\\n\\n") so a splitter can prefer those boundaries. Sections may be long; the chunker
splits them.

`metadata` holds only these keys, each omitted when it does not apply (never None; `doc` drops them):
  page    int  1-based PDF page, PPTX slide or multi-page TIFF page number
  heading str  heading path, e.g. "Install > Linux" (PPTX: the slide title)
  sheet   str  XLSX sheet name
  row     int  spreadsheet row number as shown by a spreadsheet program (header = 1)
  ocr     bool True when the text was read by OCR (ingest/ocr.py), so it may hold misreadings
The caller adds `source` and ids. Headings live in metadata, not in the text (except PPTX, where
the title is also slide text).

Every failure raises `LoadError`, whose message is a reason without the file path. Heavy parsers
are imported inside the format modules' functions. This module imports nothing else of ingest/.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
import zipfile
from pathlib import Path

from langchain_core.documents import Document


class LoadError(Exception):
    """A file could not be turned into text; `reason` (== str(exc)) says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


#: Work bounds per file: paragraphs + table rows (DOCX), shapes (PPTX), rows (XLSX, CSV), HTML
#: elements (an EPUB's chapters together), and seconds of parsing. A 130 KB DOCX of 700,000 empty
#: paragraphs stays under the zip-bomb limits; these bounds make such a file fail in about a
#: second with a reason, instead of parsing for minutes.
MAX_ELEMENTS = 200_000
MAX_SECONDS = 60.0

_MB = 1024 * 1024
#: Zip-bomb limits for the zip-based formats (DOCX, PPTX, XLSX, EPUB): total unpacked size, and
#: the compression ratio of any member over _ZIP_RATIO_MIN_SIZE.
_ZIP_MAX_TOTAL = 200 * _MB
_ZIP_MAX_RATIO = 200
_ZIP_RATIO_MIN_SIZE = 10 * _MB
#: Byte-order marks, longest first where one is a prefix of another.
BOMS = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")]


class Budget:
    """Counts the elements one file's parser visits; raises LoadError past MAX_ELEMENTS or MAX_SECONDS."""

    def __init__(self, what: str, limit: int | None = None, seconds: float | None = None):
        self.what, self.count = what, 0
        self.limit = MAX_ELEMENTS if limit is None else limit
        self.deadline = time.monotonic() + (MAX_SECONDS if seconds is None else seconds)

    def tick(self, n: int = 1) -> None:
        self.count += n
        if self.count > self.limit:
            raise LoadError(f"more than {self.limit:,} {self.what} — refusing (the limit per file)")
        if self.count % 512 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LoadError(f"parsing took longer than {MAX_SECONDS:g} s — refusing (the limit per file)")


def doc(text: str, **meta) -> Document:
    """A section; metadata keys whose value is None or "" are left out."""
    return Document(page_content=text, metadata={k: v for k, v in meta.items() if v not in (None, "")})


def squash(text: str) -> str:
    """Runs of whitespace (newlines included) -> one space; ends trimmed."""
    return " ".join(text.split())


def detail(exc: BaseException) -> str:
    """A parser's exception as a short reason: its type and the first line of its message."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    msg = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return msg if len(msg) <= 160 else msg[:157] + "..."


class Sections:
    """Collects paragraphs under a heading stack; a new heading closes the section."""

    def __init__(self):
        self.docs: list[Document] = []
        self.stack: list[tuple[int, str]] = []
        self.paras: list[str] = []

    def heading(self, level: int, text: str) -> None:
        self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, squash(text)))

    def add(self, text: str) -> None:
        if text.strip():
            self.paras.append(text.strip())

    def flush(self) -> None:
        if self.paras:
            path = " > ".join(t for _, t in self.stack if t)
            self.docs.append(doc("\n\n".join(self.paras), heading=path))
        self.paras = []

    def finish(self) -> list[Document]:
        self.flush()
        return self.docs


def decode_text(data: bytes) -> str:
    """Bytes -> str: BOM, else strict UTF-8, else cp1252, else latin-1. Rejects binary."""
    for bom, codec in BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise LoadError(f"text has a {codec} byte-order mark but is not valid {codec}") from exc
            break
    else:
        for codec in ("utf-8", "cp1252", "latin-1"):
            try:
                text = data.decode(codec)
                break
            except UnicodeDecodeError:
                continue
    text = text.lstrip("\ufeff")
    sample = text[:65536]
    bad = sum(1 for c in sample if not c.isprintable() and c not in "\n\r\t\f\v")
    if "\x00" in text or (sample and bad / len(sample) > 0.3):
        raise LoadError("binary data, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_zip(path: Path, kind: str) -> None:
    """Refuse non-zips and zip bombs before an Office (or EPUB) parser unpacks anything."""
    with open(path, "rb") as fh:
        if fh.read(8) == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise LoadError(f"not a valid {kind} (OLE2 file: password-protected, or legacy .doc/.xls/.ppt)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise LoadError(f"not a valid {kind} (not a zip archive: {detail(exc)})") from exc
    total = sum(i.file_size for i in infos)
    ratio_bomb = any(i.file_size > _ZIP_RATIO_MIN_SIZE and i.file_size > _ZIP_MAX_RATIO * max(i.compress_size, 1)
                     for i in infos)
    if total > _ZIP_MAX_TOTAL or ratio_bomb:
        raise LoadError(f"{kind} expands to {total // _MB} MB when unzipped — refusing (possible zip bomb)")


@contextlib.contextmanager
def quiet(logger_name: str):
    """Silence a parser's warnings and its logger below ERROR while the block runs."""
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(old)
