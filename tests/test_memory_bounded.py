"""Ingest memory is bounded: a corpus four times larger does not take four times the memory.

bench/memory_ingest.py, run as it is, generates corpora of 1 MB and 4 MB (the sentences of a
source text this test writes itself, recombined, in files of 100-500 KB; not README.md, whose
edits would change what this test measures) and ingests each into a fresh embedded
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
import random
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import child_env

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench" / "memory_ingest.py"


WORDS = (
    "harbour lantern keeper ferry granite tide beacon storm gull rope anchor cliff moss kelp lens "
    "prism fog signal logbook weather island pier boat engine winch hull mast sail net cod herring "
    "bay fjord reef shoal current wave oil wick brass chart compass radio siren shed crane dock"
).split()


def write_source_text(path: Path, sentences: int = 3000) -> Path:
    """A source text of our own: distinct sentences of 6-24 words, some with numbers and codes."""
    rng = random.Random(17)
    lines = []
    for i in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 24))]
        if i % 5 == 0:
            words.insert(rng.randrange(len(words)), f"{rng.randint(1, 9999)}")
        if i % 11 == 0:
            words.insert(rng.randrange(len(words)), f"XK-{rng.randint(100, 999)}-{i}")
        lines.append(" ".join(words).capitalize() + f" (note {i}).")
    path.write_text("\n\n".join(" ".join(lines[j:j + 6]) for j in range(0, len(lines), 6)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[float, dict]:
    work = tmp_path_factory.mktemp("memory")
    source = write_source_text(work / "source.txt")
    argv = [sys.executable, str(BENCH), "--sizes", "1", "4", "--embedder", "stand-in", "--trace-python", "--json",
            "--source", str(source), "--work-dir", str(work)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=child_env(), cwd=work)
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
        # 10 MB: one batch of vectors (~3 MB as lists), the keyword index's tokens of a batch (rag.bm25,
        # ~1.8 MB) and the end-of-ingest reachability check (rag.integrity); measured 11.3 MB for a
        # 0.38 MB largest file. What must not happen is growth with the corpus: asserted below.
        assert row["python_peak_mb"] < 10 + 8 * row["largest_file"] / 2**20, row
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
