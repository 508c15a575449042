"""How many stored chunks are unreachable in Chroma's vector index after kill -9 during `rag ingest`,
and after the rerun: N trials, each on a fresh data folder.

Each trial: `rag ingest CORPUS` (a subprocess running the code under --code), SIGKILL 0-3 s
(random) after it reported a random number of files stored; count; `rag ingest CORPUS` again to the end; count. "Unreachable" is counted by a
process of its own reading the store directly (as tests/test_crash_safety.py's DUMP does): a
stored chunk not among the 10 nearest to its own stored vector, or missing from a query for the
whole collection.

    python bench/kill9_reachability.py --trials 5                       # this code
    python bench/kill9_reachability.py --trials 5 --code /tmp/old-code  # e.g. `git archive 63d5710`
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COUNT = r"""
import json, sys, chromadb
from chromadb.config import Settings
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
if "default" not in [getattr(c, "name", c) for c in client.list_collections()]:
    print(json.dumps([0, 0])); sys.exit()  # killed before the first write
col = client.get_collection("default")
got = col.get(include=["embeddings"])
ids, emb = got["ids"], got["embeddings"]
if not len(ids):
    print(json.dumps([0, 0])); sys.exit()
near = col.query(query_embeddings=emb, n_results=min(10, len(ids)), include=["distances"])
miss = {i for i, f, d in zip(ids, near["ids"], near["distances"]) if i not in f and d[-1] > 1e-4}
whole = set(col.query(query_embeddings=[emb[0]], n_results=len(ids), include=[])["ids"][0])
print(json.dumps([len(ids), len(miss | (set(ids) - whole))]))
"""

BIG = 6  # as in tests/test_crash_safety.py: ~350 chunks, written in two batches
WORDS = ("harbour lantern keeper ferry granite tide beacon storm gull rope anchor cliff moss kelp lighthouse "
         "lens prism fog signal shift logbook weather north south east west island pier boat engine").split()


def corpus(folder: Path, n_docs: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n_docs):
        rng = random.Random(i)
        paras = [f"Document {i} paragraph {p}. " + " ".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14))).capitalize() + "." for _ in range(6))
            for p in range(720 if i == BIG else 20)]
        (folder / f"log{i:02d}.txt").write_text("\n\n".join(paras), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1], help="the project code to run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONPATH": str(args.code), "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        corpus(docs, args.docs)
        for trial in range(args.trials):
            data = Path(tmp) / f"data{trial}"
            env["RAG_DATA_DIR"] = str(data)
            ingest = [sys.executable, "-m", "rag.app.cli", "ingest", str(docs)]
            proc = subprocess.Popen(ingest, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True)
            # half the trials killed inside BIG (after the file before it), half anywhere
            after_files = BIG if trial % 2 == 0 else rng.randint(1, args.docs - 2)
            delay = rng.uniform(0, 3)
            reported = 0
            for line in proc.stdout:  # one line per file, as each is stored
                reported += line.startswith(("added", "updated"))
                if reported >= after_files:
                    break
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

            def count():
                out = subprocess.run([sys.executable, "-c", COUNT, str(data / "chroma")], env=env, cwd=tmp,
                                     capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(out.stderr[-2000:])
                return json.loads(out.stdout)

            killed = count()
            subprocess.run(ingest, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            after = count()
            rows.append((trial, round(delay, 1), *killed, *after))
            print(f"trial {trial}: killed {delay:.1f} s after file {after_files}: {killed[1]} of {killed[0]} unreachable; "
                  f"after the rerun: {after[1]} of {after[0]}", flush=True)
    print(f"\ncode {args.code}: {args.trials} trials, unreachable after kill: total {sum(r[3] for r in rows)}, "
          f"max {max(r[3] for r in rows)}; after the rerun: total {sum(r[5] for r in rows)}, max {max(r[5] for r in rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
