"""Ingest memory is bounded: a corpus four times larger does not take four times the memory.

bench/memory_ingest.py, run as it is, generates corpora of 1 MB and 4 MB (the sentences of this
repository's README recombined, in files of 100-500 KB) and ingests each into a fresh embedded
Chroma in a child process of its own, reporting that child's peak RSS (wait4's ru_maxrss), its RSS
once the embedder and store are open, and the peak of its Python heap during ingest (tracemalloc).

The embedder is the bench's stand-in, a real LangChain Embeddings (DeterministicFakeEmbedding, 384
dimensions) with the real model's tokenizer, so chunking, batching and Chroma are exactly
`rag ingest`'s. Not the real MiniLM because it embeds tens of chunks a second on two cores: the
4 MB corpus (~8,700 chunks) alone would take minutes, past this test's budget. Its memory is the
same at any corpus size (weights and one batch of activations; bench/memory_ingest.py shows it
with real and stand-in rows side by side), so it would add a constant to both runs.

What may grow is Chroma's: its HNSW index keeps every vector in memory (1.5 KB per chunk, a few KB
with links and ids). What must not grow is what the ingest code holds: at most one file's text and
chunks, and one batch of embeddings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench" / "memory_ingest.py"


@pytest.fixture(scope="module")
def rows() -> dict[float, dict]:
    argv = [sys.executable, str(BENCH), "--sizes", "1", "4", "--embedder", "stand-in", "--trace-python", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {round(r["bytes"] / 2**20): r for r in parsed}


def test_both_corpora_are_ingested_completely(rows):
    small, large = rows[1], rows[4]
    for row in (small, large):
        assert row["embedder"] == "stand-in"
        assert row["failed"] == []
        assert row["stored"] == row["chunks"] > 0
    assert large["chunks"] > 3 * small["chunks"]


def test_python_heap_holds_one_file_not_the_corpus(rows):
    """The ingest code's own allocations peak at one file's chunks plus one batch of embeddings.

    One batch is 256 vectors of 384 Python floats, about 4 MB; a file's text and chunks a few
    times its size. Holding the 4 MB corpus's chunks as Documents instead would take over 14 MB,
    its embeddings as lists of floats over 100 MB."""
    small, large = rows[1], rows[4]
    for row in (small, large):
        assert row["python_peak_mb"] < 5 + 8 * row["largest_file"] / 2**20, row
    assert large["python_peak_mb"] < 1.5 * small["python_peak_mb"] + 1, (small, large)


def test_peak_rss_grows_far_less_than_the_corpus(rows):
    small, large = rows[1], rows[4]
    # Proportional growth would be 4x; Chroma's index is the part that does grow.
    assert large["growth_mb"] < 2 * small["growth_mb"], (small, large)
    # Within one run, RSS climbs by Chroma's index only: a few KB per chunk, not the corpus.
    quarters = large["rss_quarters_mb"]
    assert len(quarters) == 4
    per_chunk_kb = (quarters[-1] - quarters[0]) * 1024 / (0.75 * large["chunks"])
    assert per_chunk_kb < 8, (per_chunk_kb, large)
