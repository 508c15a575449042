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
class DocumentInfo:
    doc_id: str
    source: str
    chunks: int
    complete: bool  # every chunk of the newest version is stored


@dataclass(frozen=True)
class FileResult:
    """The outcome of ingesting one file; `status` is added, unchanged, updated or failed."""

    path: str
    status: str
    chunks: int = 0
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A passage the answer cites as [n]. `quote` is the sentence(s) of the passage the answer rests
    on, exactly `text[quote_start:quote_end]`, for the faces to highlight. `supported` is True only
    when an answer sentence citing it passed rag.verify against that quote."""

    n: int
    source: str
    page: int | None
    chunk_id: str
    text: str
    score: float
    supported: bool = True
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
    evidence: list = field(default_factory=list, compare=False)  # rag.evidence.Sentence, best first

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
