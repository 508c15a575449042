"""Token-aware chunking bounded by what the embedder reads.

A character splitter of 1000 characters silently loses the tail of a chunk past the embedder's
256 word pieces. Here lengths are counted with the embedder's own tokenizer, splits prefer
paragraph, then line, then sentence, then word boundaries, and every chunk is checked against
the limit at the end, cutting at token offsets if a splitter ever overshoots.

Table rows (sections with a `row`) are packed together, consecutive rows of one sheet per chunk,
so a spreadsheet is not embedded one tiny row at a time; the chunk keeps its first `row` and
gets `row_end` for the last.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from langchain_core.documents import Document

from rag.context import CONTEXT_VERSION, context_prefix

# No "" (character) separator: text with no break left is cut at token offsets instead, with one
# tokenizer call rather than one per character.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "]
#: Characters per chunk at most. A 254-token chunk of prose is about 1,200 characters, but
#: tokens can be huge: any word over 100 characters is one [UNK] token.
MAX_CHUNK_CHARS = 4000

_own_copies: dict[int, tuple[Any, Any]] = {}  # id(embedder's tokenizer) -> (it, the chunkers' copy)
_own_copies_lock = threading.Lock()


def _own_tokenizer(tokenizer: Any) -> Any:
    """The chunkers' own copy of the embedder's tokenizer, made once.

    A fast tokenizer's truncation setting is state shared by all its callers: the embedding model
    switches truncation on for every batch it encodes. A chunker counting on the same object at that
    moment (a web upload while a question is embedded) got at most 256 tokens back and silently
    dropped the rest of a long piece of text. Chunkers never truncate, so they can share a copy.
    """
    with _own_copies_lock:
        entry = _own_copies.get(id(tokenizer))
        if entry is None or entry[0] is not tokenizer:
            own = copy.deepcopy(tokenizer)
            backend = getattr(own, "_tokenizer", None)  # the Rust tokenizer: start from no truncation
            if backend is not None:
                backend.no_truncation()
                backend.no_padding()
            entry = _own_copies[id(tokenizer)] = (tokenizer, own)
        return entry[1]


@dataclass(frozen=True)
class ChunkLimits:
    size: int  # tokens per chunk, at most what the embedder reads
    overlap: int

    @classmethod
    def for_embedder(cls, chunk_size: int, chunk_overlap: int, max_tokens: int) -> "ChunkLimits":
        size = min(chunk_size, max_tokens)
        return cls(size=size, overlap=min(chunk_overlap, size // 2))

    def fingerprint(self) -> str:
        """Goes into each document's content hash, so changing the limits re-chunks on next ingest."""
        return f"chunk:{self.size}/{self.overlap}/{CONTEXT_VERSION}"


class Chunker:
    def __init__(self, tokenizer: Any, limits: ChunkLimits):
        self.tokenizer = _own_tokenizer(tokenizer)
        self.limits = limits
        self._splitters: dict[int, Any] = {}

    def _splitter(self, size: int):
        """A splitter for chunks of `size` tokens (the limit minus a section's context prefix)."""
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        if size not in self._splitters:
            self._splitters[size] = RecursiveCharacterTextSplitter(
                chunk_size=size,
                chunk_overlap=min(self.limits.overlap, size // 2),
                length_function=self.count_tokens,
                separators=SEPARATORS,
                keep_separator="end",
                strip_whitespace=True,
            )
        return self._splitters[size]

    def budget(self, metadata: dict) -> int:
        """Tokens left for a chunk's own text once its context prefix (title, heading path: what
        rag.context puts in front of it when it is embedded) is counted; at least half the limit."""
        prefix = context_prefix(metadata)
        used = self.count_tokens(prefix) + 1 if prefix else 0
        return max(self.limits.size // 2, self.limits.size - used)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text)["input_ids"])

    def _encode(self, text: str, offsets: bool = False):
        return self.tokenizer(
            text, add_special_tokens=False, verbose=False, return_offsets_mapping=offsets
        )

    def chunk(self, sections: Iterable[Document], title: str = "") -> list[Document]:
        """Sections -> chunks. `title` (the document's, e.g. its file name made readable) goes
        into each chunk's metadata unless the section brings its own."""
        chunks: list[Document] = []
        rows: list[Document] = []
        for section in sections:
            if title and not section.metadata.get("title"):
                section = Document(page_content=section.page_content, metadata={**section.metadata, "title": title})
            if "row" in section.metadata:
                if rows and rows[-1].metadata.get("sheet") != section.metadata.get("sheet"):
                    chunks.extend(self._pack_rows(rows))
                    rows = []
                rows.append(section)
                continue
            chunks.extend(self._pack_rows(rows))
            rows = []
            chunks.extend(self._split_text(section))
        chunks.extend(self._pack_rows(rows))
        return chunks

    def _split_text(self, section: Document) -> list[Document]:
        size = self.budget(section.metadata)
        pieces = self._splitter(size).split_text(section.page_content)
        return [
            Document(page_content=text, metadata=dict(section.metadata))
            for piece in pieces
            for text in self._enforce_limit(piece, size)
        ]

    def _pack_rows(self, rows: list[Document]) -> list[Document]:
        out: list[Document] = []
        group: list[Document] = []
        used = 0
        size = self.budget(rows[0].metadata) if rows else self.limits.size  # rows of one sheet
        for row in rows:
            n = self.count_tokens(row.page_content) + 1  # +1 for the newline joining rows
            if group and used + n > size:
                out.append(self._join_rows(group))
                group, used = [], 0
            group.append(row)
            used += n
        if group:
            out.append(self._join_rows(group))
        # A single over-long row still has to fit.
        return [
            Document(page_content=text, metadata=dict(doc.metadata))
            for doc in out
            for text in self._enforce_limit(doc.page_content, size)
        ]

    @staticmethod
    def _join_rows(group: list[Document]) -> Document:
        metadata = dict(group[0].metadata)
        if len(group) > 1:
            metadata["row_end"] = group[-1].metadata["row"]
        return Document(page_content="\n".join(r.page_content for r in group), metadata=metadata)

    def _enforce_limit(self, text: str, size: int) -> list[str]:
        """Cut `text` at token offsets into pieces of at most `size` tokens."""
        text = text.strip()
        if not text:
            return []
        if len(text) > MAX_CHUNK_CHARS:
            step = MAX_CHUNK_CHARS - 200
            return [p for i in range(0, len(text), step) for p in self._enforce_limit(text[i : i + MAX_CHUNK_CHARS], size)]
        enc = self._encode(text, offsets=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        if len(ids) <= size:
            return [text]
        step = max(1, size - min(self.limits.overlap, size // 2))
        pieces: list[str] = []
        start = 0
        while start < len(ids):
            end = min(start + size, len(ids))
            piece = text[offsets[start][0] : offsets[end - 1][1]].strip()
            # Re-tokenizing a slice cut inside a word can add a piece or two: shrink until it fits.
            while end - start > 1 and self.count_tokens(piece) > size:
                end -= 1
                piece = text[offsets[start][0] : offsets[end - 1][1]].strip()
            if piece:
                pieces.append(piece)
            if end >= len(ids):
                break
            start = max(start + 1, min(start + step, end))
        return pieces
