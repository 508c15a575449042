"""Calibrating RAG_UNSURE_BELOW on `rag eval --answers --report` reports of the unanswerable sets.

    python bench/calibrate_unsure.py /tmp/rag-bench/xquad-report.json /tmp/rag-bench/covid-report.json

The reports come from bench/unanswerable.py sets (answerable questions and SQuAD-2.0-style
unanswerable ones), run with RAG_UNSURE_BELOW=-1 so that every question reached the model; each
row carries its best evidence score. Dev = even-numbered rows, test = odd-numbered rows of each. A threshold t turns every answer whose best evidence scores below
t into "unsure" (the chain does that before calling the model). For each t: answerable questions
not answered, unanswerable questions not answered, answer-contains-gold, per dev report. The
chosen t is the highest whose answerable not-answered rate is at most 10% on every dev report;
then the same rates on the test reports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

THRESHOLDS = [round(0.2 + 0.05 * i, 2) for i in range(17)]  # 0.20 .. 1.00
MAX_ANSWERABLE_NOT_ANSWERED = 0.10


def rows_of(path: Path) -> list[dict]:
    return [r for r in json.loads(path.read_text())["per_question"] if "status" in r]


def status_at(row: dict, t: float) -> str:
    if row["status"] == "refused":
        return "refused"
    if row.get("evidence_score") is not None and row["evidence_score"] < t:
        return "unsure"
    return row["status"]


def rates(rows: list[dict], t: float) -> tuple[float, float, float]:
    ok = [r for r in rows if r["answerable"]]
    no = [r for r in rows if not r["answerable"]]
    ok_not = sum(status_at(r, t) != "answered" for r in ok) / max(1, len(ok))
    no_not = sum(status_at(r, t) != "answered" for r in no) / max(1, len(no))
    return ok_not, no_not, len(ok) + len(no)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, nargs="+")
    args = parser.parse_args()
    dev = {p.name: rows_of(p)[0::2] for p in args.reports}
    test = {p.name: rows_of(p)[1::2] for p in args.reports}
    print(f"{'threshold':>9} " + " ".join(f"{n[:28]:>34}" for n in dev))
    ok_ts = []
    for t in [-1.0] + THRESHOLDS:
        cells = []
        good = True
        for rows in dev.values():
            a, u, n = rates(rows, t)
            good &= a <= MAX_ANSWERABLE_NOT_ANSWERED
            cells.append(f"answerable {a:.2f} unanswerable {u:.2f}")
        if good:
            ok_ts.append(t)
        print(f"{t:>9.2f} " + " ".join(f"{c:>34}" for c in cells), flush=True)
    print("(rates are of questions NOT answered: unsure or refused)")
    if not ok_ts:
        print("no threshold keeps answerable not-answered at or below 10% on every dev report")
        return
    best = max(ok_ts)
    print(f"\nchosen RAG_UNSURE_BELOW={best:.2f} (highest with answerable not-answered <= 10% on every dev report)")
    for name, rows in test.items():
        for t, label in ((-1.0, "off"), (best, f"{best:.2f}")):
            a, u, n = rates(rows, t)
            print(f"test half of {name} at {label}: answerable not answered {a:.3f}, "
                  f"unanswerable not answered {u:.3f} ({n} questions)")


if __name__ == "__main__":
    main()
