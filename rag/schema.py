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
    """A passage the answer cites as [n]; `supported` is False when the citing sentence shares
    no content with the passage (small models cite loosely: the UI shows those as doubtful)."""

    n: int
    source: str
    page: int | None
    chunk_id: str
    text: str
    score: float
    supported: bool = True
    inferred: bool = False  # attributed by content overlap, the model wrote no marker


@dataclass(frozen=True)
class Answer:
    answer: str
    citations: list[Citation] = field(default_factory=list)
    rewritten_query: str | None = None  # the standalone question searched for, after a follow-up
    refused: bool = False  # the documents do not contain the answer
    passages: list[SearchHit] = field(default_factory=list, compare=False)  # what the LLM saw

    def to_json(self) -> dict:
        return {
            "answer": self.answer,
            "citations": [asdict(c) for c in self.citations],
            "rewritten_query": self.rewritten_query,
            "refused": self.refused,
        }
