"""Chunks never exceed what the real embedder reads, and prefer natural boundaries."""

import random

import pytest
from langchain_core.documents import Document

from ingest.chunking import Chunker, ChunkLimits


@pytest.fixture
def chunker(embedder):
    return Chunker(embedder.tokenizer, ChunkLimits.for_embedder(256, 32, embedder.max_tokens))


def test_limit_is_capped_at_what_the_embedder_reads(embedder):
    assert embedder.max_tokens == 254  # all-MiniLM-L6-v2: 256 word pieces minus [CLS] and [SEP]
    limits = ChunkLimits.for_embedder(1000, 200, embedder.max_tokens)
    assert limits.size == 254


def test_no_chunk_is_longer_than_the_embedder_reads(chunker, embedder):
    random.seed(1)
    words = ["harbour", "naïve", "東京都", "Zürich", "x" * 60, "supercalifragilistic", "1,234.5"]
    paragraphs = [" ".join(random.choice(words) for _ in range(random.randint(3, 600))) for _ in range(30)]
    text = "\n\n".join(paragraphs) + "\n\n" + "y" * 3000 + "\n" + "🙂" * 500
    chunks = chunker.chunk([Document(page_content=text, metadata={"page": 3})])
    assert len(chunks) > 10
    for chunk in chunks:
        assert 0 < embedder.count_tokens(chunk.page_content) <= 254
        assert chunk.metadata == {"page": 3}


def test_whole_text_survives_chunking(chunker):
    words = [f"w{i}" for i in range(3000)]
    chunks = chunker.chunk([Document(page_content=" ".join(words))])
    seen = {w for c in chunks for w in c.page_content.split()}
    assert seen == set(words)


def test_paragraph_boundaries_are_preferred(chunker):
    paragraphs = [f"Paragraph {i} " + "lorem ipsum dolor " * 30 for i in range(6)]
    chunks = chunker.chunk([Document(page_content="\n\n".join(p.strip() for p in paragraphs))])
    for chunk in chunks:
        assert chunk.page_content.startswith("Paragraph"), chunk.page_content[:40]


def shared_edge(left: str, right: str) -> str:
    """The longest run of whole words that ends `left` and starts `right`."""
    a, b = left.split(), right.split()
    n = max((n for n in range(1, min(len(a), len(b)) + 1) if a[-n:] == b[:n]), default=0)
    return " ".join(b[:n])


def test_neighbouring_chunks_overlap(chunker, embedder):
    """Each chunk starts with the last sentences of the one before: at least half the configured
    32-token overlap (whole sentences of ~8 tokens fit), never more than it."""
    sentences = [f"Sentence number {i} is here." for i in range(400)]
    chunks = chunker.chunk([Document(page_content=" ".join(sentences))])
    assert len(chunks) > 5
    for left, right in zip(chunks, chunks[1:]):
        edge = shared_edge(left.page_content, right.page_content)
        assert 16 <= embedder.count_tokens(edge) <= 32, (left.page_content[-80:], right.page_content[:80])
        assert edge.startswith("Sentence number") and edge.endswith("is here.")


def test_no_overlap_when_set_to_zero(embedder):
    chunker = Chunker(embedder.tokenizer, ChunkLimits.for_embedder(256, 0, embedder.max_tokens))
    sentences = [f"Sentence number {i} is here." for i in range(400)]
    chunks = chunker.chunk([Document(page_content=" ".join(sentences))])
    assert all(shared_edge(a.page_content, b.page_content) == "" for a, b in zip(chunks, chunks[1:]))
    assert " ".join(c.page_content for c in chunks) == " ".join(sentences)


def test_table_rows_are_packed_with_their_row_range(chunker, embedder):
    rows = [
        Document(page_content=f"item: part-{i} | price: {i * 3}", metadata={"sheet": "S", "row": i + 2})
        for i in range(200)
    ]
    rows.append(Document(page_content="item: other", metadata={"sheet": "T", "row": 2}))
    chunks = chunker.chunk(rows)
    assert 1 < len(chunks) < 200
    assert chunks[0].metadata["row"] == 2 and chunks[0].metadata["row_end"] > 2
    # Rows of different sheets never share a chunk.
    assert chunks[-1].metadata == {"sheet": "T", "row": 2}
    covered = [n for c in chunks[:-1] for n in range(c.metadata["row"], c.metadata.get("row_end", c.metadata["row"]) + 1)]
    assert covered == list(range(2, 202))
    assert all(embedder.count_tokens(c.page_content) <= 254 for c in chunks)
