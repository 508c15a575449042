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
