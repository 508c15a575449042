"""kill -9 in the middle of `rag ingest`, for real, then run it again: nothing lost, nothing twice.

The ingest runs as a subprocess of the project's CLI on ~40 generated documents. It is killed
with SIGKILL once it has reported some files done, so the kill lands mid-ingest (asserted: fewer
than all documents are stored afterwards). The embedded Chroma is used by one process at a time,
so the test never reads the store while an ingest runs: progress is watched through the CLI's own
per-file lines (unbuffered stdout), and the store is only read, by a separate process, after the
killed one is gone.

A small file is stored by one Chroma write, so a kill between files proves little. File BIG is
long enough (>300 chunks) to be written in two batches; the first kill of each test waits until
the store's files change after the file before it was reported (BIG's first batch is written)
and the second batch is still being embedded, so the kill lands inside that document, and the
test asserts it did: BIG is found half stored (and, on update, beside its complete old version).

`rag ingest` embeds and writes the chunks of many files together (ingest/batching.py: batches of
BATCH_CHUNKS, a small file never split across two writes, results reported as each file's last
chunk is written). The small files are long enough (~9 chunks) that the files after BIG take
more than one batch, so the second kill, once the rerun has reported some files, still lands
before the end of the run.
"""
from __future__ import annotations

import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import child_env, rag_cmd

from ingest.batching import BATCH_CHUNKS
from ingest.chunking import ChunkLimits
from ingest.pipeline import document_id, file_hash
from rag.settings import Settings

pytestmark = pytest.mark.slow

N_DOCS = 40
BIG = 6  # log06.txt: ~350 chunks, more than one batch of the ingest pipeline (256)
BIG_PARAGRAPHS = 720
SMALL_PARAGRAPHS = 20  # ~9 chunks: the 33 files after BIG fill more than one batch
FIRST_BATCH = BATCH_CHUNKS
WORDS = (
    "harbour lantern keeper ferry granite tide beacon storm gull rope anchor cliff moss kelp "
    "lighthouse lens prism fog signal shift logbook weather north south east west island pier boat "
    "engine winch hull mast sail net fish cod herring salmon bay fjord reef shoal current wave"
).split()

# Reads the store the way the product opens it; a process of its own, run only when no ingest runs.
DUMP = """
import json, sys
from rag.settings import Settings
from rag.store import make_client
col = make_client(Settings(data_dir=sys.argv[1])).get_collection("default")
got = col.get(include=["metadatas", "documents", "embeddings"])
misses = []
if got["ids"]:
    # the vector index must agree with the stored rows: each chunk's vector finds that chunk. HNSW
    # search is approximate and these generated chunks are near one another, so "finds" is "among
    # the 10 nearest"; a chunk missing from the index is never returned at all.
    found = col.query(query_embeddings=got["embeddings"], n_results=min(10, len(got["ids"])), include=[])["ids"]
    misses = [i for i, f in zip(got["ids"], found) if i not in f]
    if misses:  # diagnose
        import numpy as np
        emb = {i: np.asarray(e) for i, e in zip(got["ids"], got["embeddings"])}
        docs = dict(zip(got["ids"], got["documents"]))
        out = []
        for m in misses:
            r = col.query(query_embeddings=[emb[m].tolist()], n_results=col.count(), include=["distances"])
            ids, dist = r["ids"][0], r["distances"][0]
            own = ids.index(m) if m in ids else None
            top = ids[0]
            cos = float(emb[m] @ emb[top] / np.linalg.norm(emb[m]) / np.linalg.norm(emb[top]))
            out.append(f"{m}: own rank {own} dist {dist[own] if own is not None else None}; top {top} dist {dist[0]:.4f} "
                       f"sqlite-cos {cos:.4f} same text {docs[m] == docs[top]}; len {len(docs[m])}")
        misses = out
print(json.dumps({"count": col.count(), "ids": got["ids"], "metadatas": got["metadatas"],
                  "documents": got["documents"], "self_query_misses": misses}))
"""


def make_corpus(folder: Path, edition: str) -> list[Path]:
    """N_DOCS text and Markdown files of SMALL_PARAGRAPHS paragraphs (~1,500 words, ~9 chunks)
    each, but BIG."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(N_DOCS):
        rng = random.Random(i)
        paragraphs = []
        for p in range(BIG_PARAGRAPHS if i == BIG else SMALL_PARAGRAPHS):
            sentences = [
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14))).capitalize() + "."
                for _ in range(6)
            ]
            paragraphs.append(f"Document {i} paragraph {p}, {edition} edition. " + " ".join(sentences))
        if i % 2:
            path, text = folder / f"log{i:02d}.md", f"# Log {i}\n\n" + "\n\n".join(paragraphs) + "\n"
        else:
            path, text = folder / f"log{i:02d}.txt", "\n\n".join(paragraphs) + "\n"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


# ------------------------------------------------------------------ the CLI as subprocesses

def cli_env(data_dir: Path) -> dict[str, str]:
    return child_env(RAG_DATA_DIR=str(data_dir))


def rag(args: list[str], data_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*rag_cmd(), *args], capture_output=True, text=True, encoding="utf-8",
        env=cli_env(data_dir), cwd=cwd, timeout=900,
    )


def store_files(data_dir: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file of the embedded Chroma: changes when a write lands."""
    out = {}
    for path in (data_dir / "chroma").rglob("*"):
        if path.is_file() and not path.name.endswith("-shm"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


def wait_for_a_write(proc, data_dir: Path, deadline: float, settle: float = 0.5) -> None:
    """Return once the store's files changed and then stayed unchanged for `settle` seconds: one
    batch was written and the next is being embedded."""
    before = store_files(data_dir)
    while (now := store_files(data_dir)) == before:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("rag ingest wrote nothing to the store after the last reported file")
        time.sleep(0.05)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle:
        time.sleep(0.05)
        if (later := store_files(data_dir)) != now:
            now, quiet_since = later, time.monotonic()
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("rag ingest finished before the kill could land inside a document")


def ingest_and_kill(folder: Path, data_dir: Path, cwd: Path, after: int, fraction: float = 0.5,
                    inside_next: bool = False) -> dict[str, str]:
    """Start `rag ingest FOLDER`, wait until it has reported `after` files added/updated, then
    SIGKILL it: after `fraction` of a typical file's time, or with `inside_next` once the next
    file's first batch is in the store. Returns the statuses it reported before dying, by path."""
    err_path = cwd / f"ingest-{time.monotonic_ns()}.err"
    with err_path.open("w") as err:
        proc = subprocess.Popen(
            [*rag_cmd(), "ingest", str(folder)],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
            env=cli_env(data_dir), cwd=cwd,
        )
    lines: queue.Queue = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put((time.monotonic(), line.rstrip("\n")))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    statuses: dict[str, str] = {}
    work_times: list[float] = []
    deadline = time.monotonic() + 600
    try:
        while len(work_times) < after:
            try:
                item = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"rag ingest reported {len(work_times)} files in 600 s")
            if item is None:
                pytest.fail(f"rag ingest ended (exit {proc.wait()}) before it could be killed:\n"
                            f"{err_path.read_text()[-2000:]}")
            stamp, line = item
            status, _, rest = line.partition(" ")
            if status in ("added", "updated", "unchanged", "failed"):
                statuses[rest.split(" chunks  ", 1)[-1]] = status
            if status in ("added", "updated"):
                work_times.append(stamp)
        if inside_next:
            wait_for_a_write(proc, data_dir, deadline)
        else:
            gaps = [b - a for a, b in zip(work_times, work_times[1:])]
            time.sleep(fraction * (statistics.median(gaps) if gaps else 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while (item := lines.get(timeout=10)) is not None:  # lines written just before the kill
        status, _, rest = item[1].partition(" ")
        if status in ("added", "updated", "unchanged", "failed"):
            statuses[rest.split(" chunks  ", 1)[-1]] = status
    assert "failed" not in statuses.values(), statuses
    return statuses


def dump(data_dir: Path, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", DUMP, str(data_dir)], capture_output=True, text=True,
                          env=cli_env(data_dir), cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def ingest_json(folder: Path, data_dir: Path, cwd: Path) -> dict:
    proc = rag(["ingest", str(folder), "--json"], data_dir, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


# ------------------------------------------------------------------ what the store holds

def versions(d: dict) -> dict[str, dict[str, list[int]]]:
    """doc_id -> doc_hash -> [chunk_count, chunks stored]."""
    out: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for m in d["metadatas"]:
        out[m["doc_id"]].setdefault(m["doc_hash"], [m["chunk_count"], 0])[1] += 1
    return out


def complete_hash(doc_versions: dict[str, list[int]]) -> set[str]:
    return {h for h, (expected, stored) in doc_versions.items() if expected == stored}


def expected_hashes(paths: list[Path], embedder) -> dict[str, str]:
    settings = Settings()
    limits = ChunkLimits.for_embedder(settings.chunk_size, settings.chunk_overlap, embedder.max_tokens)
    return {document_id(p): file_hash(p, limits.fingerprint()) for p in paths}


INDEX_MISSES: list[str] = []  # per test: stored chunks the vector index did not return, by intermediate dump


def assert_never_broken(d: dict, paths: list[Path]) -> None:
    """What must hold at any moment, even right after a kill. The vector index's agreement is
    recorded here, and judged on the final dump by `index_agreed` (see there)."""
    assert d["count"] == len(d["ids"]) == len(set(d["ids"])), "duplicate chunk ids"
    if d["self_query_misses"]:
        INDEX_MISSES.append(f"{len(d['self_query_misses'])} of {d['count']} chunks, e.g. {d['self_query_misses'][0]}")
    known = {document_id(p) for p in paths}
    assert {m["doc_id"] for m in d["metadatas"]} <= known, "chunks of a document that is not in the folder"
    for doc_id, by_hash in versions(d).items():
        for doc_hash, (expected, stored) in by_hash.items():
            assert stored <= expected, (doc_id, doc_hash, expected, stored)


def assert_each_stored_once(d: dict, paths: list[Path], hashes: dict[str, str]) -> None:
    """After the rerun: every file exactly once, as its current version, nothing else."""
    assert_never_broken(d, paths)
    rows = defaultdict(list)
    for chunk_id, m, text in zip(d["ids"], d["metadatas"], d["documents"]):
        rows[m["doc_id"]].append((chunk_id, m, text))
    by_id = {document_id(p): p for p in paths}
    assert set(rows) == set(by_id), "a document is missing, or an orphan is left"
    for doc_id, chunks in rows.items():
        path = by_id[doc_id]
        assert {m["doc_hash"] for _, m, _ in chunks} == {hashes[doc_id]}, f"{path.name}: not exactly its current version"
        n = chunks[0][1]["chunk_count"]
        assert len(chunks) == n, f"{path.name}: {len(chunks)} chunks stored, {n} expected"
        assert sorted(m["chunk_index"] for _, m, _ in chunks) == list(range(n))
        assert len({text for _, _, text in chunks}) == n, f"{path.name}: a chunk text is stored twice"
        assert {m["source"] for _, m, _ in chunks} == {str(path)}
        assert {cid for cid, _, _ in chunks} == {f"{doc_id}-{hashes[doc_id][:12]}-{i:05d}" for i in range(n)}


def assert_docs_list_all_complete(data_dir: Path, cwd: Path, paths: list[Path], d: dict) -> None:
    proc = rag(["docs", "list", "--json"], data_dir, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = json.loads(proc.stdout)
    assert sorted(doc["source"] for doc in docs) == sorted(str(p) for p in paths)
    assert all(doc["complete"] for doc in docs), [doc for doc in docs if not doc["complete"]]
    stored = defaultdict(int)
    for m in d["metadatas"]:
        stored[m["source"]] += 1
    assert {doc["source"]: doc["chunks"] for doc in docs} == dict(stored)


# ------------------------------------------------------------------ the tests

def test_kill_9_mid_ingest_twice_then_a_rerun_stores_everything_once(tmp_path, embedder):
    folder, data_dir = tmp_path / "logs", tmp_path / "data"
    paths = make_corpus(folder, "first")
    hashes = expected_hashes(paths, embedder)

    # 1. killed inside the 7th file, BIG, with its first batch stored and the second not
    first = ingest_and_kill(folder, data_dir, tmp_path, after=BIG, inside_next=True)
    d1 = dump(data_dir, tmp_path)
    assert_never_broken(d1, paths)
    done1 = {doc_id for doc_id, v in versions(d1).items() if hashes[doc_id] in complete_hash(v)}
    assert len(done1) == BIG, f"the kill did not land in file {BIG + 1}: {len(done1)} of {N_DOCS} stored"
    assert sum(s == "added" for s in first.values()) == len(done1)
    big = document_id(paths[BIG])
    ((big_hash, (expected, stored)),) = versions(d1)[big].items()
    assert big_hash == hashes[big] and stored == FIRST_BATCH < expected, "the kill did not land inside BIG"

    # 2. the rerun skips what is done, and is killed again, later in a file this time
    second = ingest_and_kill(folder, data_dir, tmp_path, after=4, fraction=0.9)
    redone = {document_id(p) for p, s in second.items() if s != "unchanged"}
    assert not done1 & redone, "a document stored completely was ingested again"
    d2 = dump(data_dir, tmp_path)
    assert_never_broken(d2, paths)
    done2 = {doc_id for doc_id, v in versions(d2).items() if hashes[doc_id] in complete_hash(v)}
    assert done1 < done2 and len(done2) < N_DOCS, f"second kill: {len(done1)} -> {len(done2)} of {N_DOCS}"

    # 3. run to the end: exit 0, the rest added, nothing done twice
    report = ingest_json(folder, data_dir, tmp_path)
    status = {document_id(f["path"]): f["status"] for f in report["files"]}
    assert len(status) == N_DOCS and report["failed"] == 0
    assert {s for d, s in status.items() if d in done2} <= {"unchanged"}
    assert {s for d, s in status.items() if d not in done2} <= {"added"}
    assert report["unchanged"] == len(done2) and report["added"] == N_DOCS - len(done2)

    d3 = dump(data_dir, tmp_path)
    assert_each_stored_once(d3, paths, hashes)
    assert_docs_list_all_complete(data_dir, tmp_path, paths, d3)
    index_agreed(d3, data_dir, tmp_path)


def test_kill_9_mid_update_leaves_every_document_with_one_version_after_a_rerun(tmp_path, embedder):
    folder, data_dir = tmp_path / "logs", tmp_path / "data"
    paths = make_corpus(folder, "first")
    old = expected_hashes(paths, embedder)
    assert ingest_json(folder, data_dir, tmp_path)["added"] == N_DOCS

    make_corpus(folder, "second")  # every file changes
    new = expected_hashes(paths, embedder)
    assert not set(old.values()) & set(new.values())
    ingest_and_kill(folder, data_dir, tmp_path, after=BIG, inside_next=True)  # inside BIG's update

    d1 = dump(data_dir, tmp_path)
    assert_never_broken(d1, paths)
    v1 = versions(d1)
    # the old version goes only once the new one is complete: no document is ever without one
    for doc_id in old:
        assert complete_hash(v1[doc_id]) & {old[doc_id], new[doc_id]}, f"document {doc_id} lost both versions"
    only_new = {doc_id for doc_id in old if set(v1[doc_id]) == {new[doc_id]} and new[doc_id] in complete_hash(v1[doc_id])}
    assert len(only_new) == BIG, f"the kill did not land in file {BIG + 1}: {len(only_new)} of {N_DOCS} updated"
    # both versions of BIG existed when the process died: the old one whole, the new one half written
    big = document_id(paths[BIG])
    assert set(v1[big]) == {old[big], new[big]}, v1[big]
    assert complete_hash(v1[big]) == {old[big]}
    assert v1[big][new[big]][1] == FIRST_BATCH < v1[big][new[big]][0]

    report = ingest_json(folder, data_dir, tmp_path)
    status = {document_id(f["path"]): f["status"] for f in report["files"]}
    assert {s for d, s in status.items() if d in only_new} == {"unchanged"}
    assert {s for d, s in status.items() if d not in only_new} == {"updated"}
    assert report["failed"] == 0 and report["added"] == 0

    d2 = dump(data_dir, tmp_path)
    assert_each_stored_once(d2, paths, new)
    assert not [t for t in d2["documents"] if "first edition" in t], "text of an old version survived"
    texts = defaultdict(str)
    for m, t in zip(d2["metadatas"], d2["documents"]):
        texts[m["doc_id"]] += t
    assert all("second edition" in t for t in texts.values())
    assert_docs_list_all_complete(data_dir, tmp_path, paths, d2)
    index_agreed(d2, data_dir, tmp_path)


@pytest.fixture(autouse=True)
def _fresh_index_misses():
    INDEX_MISSES.clear()


def index_agreed(d: dict, data_dir: Path, cwd: Path) -> None:
    """At the END, after the rerun: every stored chunk is found by its own vector (the DUMP's
    check, a process of its own opening the store afresh), and `rag docs check` agrees. After
    the kills, before the rerun, Chroma's index had lost some (recorded in INDEX_MISSES, printed:
    the rerun's open and its end repair them, rag.integrity)."""
    print("unreachable at intermediate dumps:", INDEX_MISSES or "none")
    assert not d["self_query_misses"], f"stored chunks unreachable after the rerun: {d['self_query_misses']}"
    proc = rag(["docs", "check", "--json"], data_dir, cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    (report,) = json.loads(proc.stdout)
    assert (report["stored"], report["unreachable"], report["keyword_in_sync"]) == (d["count"], 0, True), report
