"""The two local runtimes side by side: xllamacpp (prebuilt wheel) and llama-cpp-python (compiled).

    python bench/runtime_compare.py XQUAD.json COVID-QA.json --limit 20 --data-dir /tmp/rag-bench

Both runtimes load the same GGUF (default RAG_LOCAL_MODEL) in one process and answer the same
questions through the real chain at temperature 0, one after the other, the order alternating
per question, so that load from other jobs on the machine falls on both alike. Per runtime:
answer contains gold (answerable), answered/unsure/refused, identical answers, time to first
token p50/p90 and seconds per answer. Needs both runtimes installed (`pip install -e
".[llama-cpp]"` for the second).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import DEFAULT_DATA_DIR, load_dataset, open_ingested, sample  # noqa: E402

RUNTIMES = ("xllamacpp", "llama-cpp")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def run(datasets: list[Path], limit: int, data_dir: Path) -> list[dict]:
    from rag.app.evaluation.scoring import contains
    from rag.answer.chain import QAChain
    from rag.llm import make_llm
    from rag.retrieval import Retriever

    rows = []
    for path in datasets:
        store, settings = open_ingested(path, data_dir)
        settings = settings.model_copy(update={"temperature": 0.0})
        retriever = Retriever(store, settings)
        chains = {}
        for name in RUNTIMES:
            t0 = time.perf_counter()
            llm = make_llm(settings.model_copy(update={"local_runtime": name}))
            print(f"# {name}: loaded in {time.perf_counter() - t0:.2f} s", flush=True)
            chains[name] = QAChain(retriever, llm, settings)
        for i, q in enumerate(sample(load_dataset(path).questions, limit)):
            order = RUNTIMES if i % 2 == 0 else RUNTIMES[::-1]
            row = {"dataset": path.name, "question": q.text, "answerable": q.answerable}
            for name in order:
                answer = chains[name].ask(q.text)
                row[name] = {
                    "answer": answer.answer, "status": answer.status,
                    "contains": bool(q.answerable and q.answers and contains(answer.answer, q.answers)),
                    "first_token": answer.timings.get("first_token"), "total": answer.timings.get("total"),
                }
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| runtime | questions | contains gold (answerable) | answered / unsure / refused | "
             "same answer as the other | first token p50 / p90 (s) | s per answer |",
             "|---|---|---|---|---|---|---|"]
    same = sum(r[RUNTIMES[0]]["answer"] == r[RUNTIMES[1]]["answer"] for r in rows)
    answerable = [r for r in rows if r["answerable"]]
    for name in RUNTIMES:
        got = [r[name] for r in rows]
        statuses = [g["status"] for g in got]
        firsts = [g["first_token"] for g in got if g["first_token"] is not None]
        totals = [g["total"] for g in got if g["total"] is not None]
        gold = sum(r[name]["contains"] for r in answerable)
        lines.append(
            f"| {name} | {len(rows)} | {gold}/{len(answerable)} | "
            f"{statuses.count('answered')} / {statuses.count('unsure')} / {statuses.count('refused')} | "
            f"{same}/{len(rows)} | {_pct(firsts, 0.5):.2f} / {_pct(firsts, 0.9):.2f} | "
            f"{statistics.mean(totals) if totals else float('nan'):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", type=Path, help="SQuAD-format .json files")
    parser.add_argument("--limit", type=int, default=20, help="questions per dataset, evenly spaced")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, help="write the per-question rows here (JSONL)")
    parser.add_argument("--table", type=Path, help="print the table of a JSONL written before")
    args = parser.parse_args()
    if args.table:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]
    else:
        rows = run(args.datasets, args.limit, args.data_dir)
        if args.out:
            args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(table(rows))


if __name__ == "__main__":
    main()
