"""What travels between the store, the CLI and (later) the UI: plain data, formatted only at the edge."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SearchHit:
    rank: int  # 1-based
    score: float  # cosine similarity, higher is closer
    source: str
    page: int | None
    chunk_id: str
    text: str
    metadata: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("metadata")
        return data


@dataclass(frozen=True)
class ReadReport:
    """What reading one file found. Stored on each of its chunks (keys `read_*`), so the store
    alone can say it again later (`rag docs list`)."""

    pages: int | None = None  # pages, slides or image frames; None for formats without pages
    characters: int = 0  # of text read
    ocr_pages: int = 0  # pages whose text was read by OCR
    empty_pages: int = 0  # pages that gave no text (or were past RAG_OCR_MAX_PAGES)
    ocr_only: bool = False  # all of the text came from OCR: expect misreadings
    seconds: float = 0.0  # reading: parsing and OCR, not chunking or embedding
    warning: str | None = None  # e.g. the OCR page limit was reached

    _KEYS = ("pages", "characters", "ocr_pages", "empty_pages", "ocr_only", "seconds", "warning")

    def to_metadata(self) -> dict:
        """Chunk metadata (Chroma takes no None values: those keys are left out)."""
        return {f"read_{k}": getattr(self, k) for k in self._KEYS if getattr(self, k) is not None}

    @classmethod
    def from_metadata(cls, metadata: dict) -> "ReadReport | None":
        if "read_characters" not in metadata:
            return None  # ingested before reports were stored
        return cls(**{k: metadata[f"read_{k}"] for k in cls._KEYS if f"read_{k}" in metadata})

    def describe(self) -> str:
        """One short phrase for a terminal line or a table cell."""
        parts = []
        if self.pages is not None:
            parts.append(f"{self.pages} {'page' if self.pages == 1 else 'pages'}")
        parts.append(f"{self.characters:,} chars")
        if self.ocr_only:
            parts.append("text from OCR only" + (f" ({self.ocr_pages} pages)" if self.ocr_pages > 1 else ""))
        elif self.ocr_pages:
            parts.append(f"{self.ocr_pages} OCR'd")
        if self.empty_pages:
            parts.append(f"{self.empty_pages} without text")
        return ", ".join(parts)


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    source: str
    chunks: int
    complete: bool  # every chunk of the newest version is stored
    read: ReadReport | None = None  # None for documents ingested before reports were stored

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FileResult:
    """The outcome of ingesting one file; `status` is added, unchanged, updated or failed.
    `read` says what reading it found (for unchanged files: what was found when it was read)."""

    path: str
    status: str
    chunks: int = 0
    error: str | None = None
    read: ReadReport | None = None
    seconds: float = 0.0  # this run's time for the file: reading, chunking, embedding, storing

    def to_json(self) -> dict:
        data = asdict(self)
        read = data.pop("read") or {}
        data["read_seconds"] = read.pop("seconds", None)
        keys = ("pages", "characters", "ocr_pages", "empty_pages", "ocr_only", "warning")
        return {**data, **{k: read.get(k) for k in keys}}


@dataclass(frozen=True)
class Citation:
    """A passage the answer cites as [n]. `quote` is the sentence(s) of the passage the answer rests
    on, exactly `text[quote_start:quote_end]`, for the faces to highlight. Every citation is of an
    answer sentence that passed rag.answer.verify against that quote (the rest are dropped)."""

    n: int
    source: str
    page: int | None
    chunk_id: str
    text: str
    score: float
    inferred: bool = False  # attributed by us, the model wrote no marker
    quote: str = ""
    quote_start: int = 0
    quote_end: int = 0


#: What an Answer is: a verified answer, the evidence quoted when no answer sentence verified,
#: or a refusal decided from retrieval before any LLM call.
STATUSES = ("answered", "unsure", "refused")


@dataclass(frozen=True)
class Answer:
    answer: str
    citations: list[Citation] = field(default_factory=list)
    rewritten_query: str | None = None  # the standalone question searched for, after a follow-up
    status: str = "answered"  # one of STATUSES
    passages: list[SearchHit] = field(default_factory=list, compare=False)  # what was retrieved
    timings: dict = field(default_factory=dict, compare=False)  # seconds: first_token, total; prompt_chars
    evidence: list = field(default_factory=list, compare=False)  # rag.answer.evidence.Sentence, best first

    @property
    def refused(self) -> bool:
        """The documents hold nothing relevant: no answer was generated."""
        return self.status == "refused"

    def to_json(self) -> dict:
        return {
            "answer": self.answer,
            "status": self.status,
            "citations": [asdict(c) for c in self.citations],
            "rewritten_query": self.rewritten_query,
            "refused": self.refused,
        }
