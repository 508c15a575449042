"""What to say when: the answer policies measured on answerable and unanswerable questions.

    python bench/answer_policy.py /tmp/ans/xquad-u.json /tmp/ans/covid-u.json --data-dir /tmp/ans/data \
        --out /tmp/ans/policy.jsonl --every 2   # the default local model on every 2nd test question
    python bench/answer_policy.py --table /tmp/ans/policy.jsonl

(The sets come from bench/unanswerable.py; see bench/answerability.py.) Every question is asked
through the real chain with the confidence gate off, so that the model
drafts an answer for each; the record keeps the draft, whether it verified, the evidence's
confidence (rag.answer.answerability) and whether the best evidence sentence holds the gold answer.
`--table` then replays the policies on the records, on the test half (odd-numbered questions;
the confidence model was fitted on the even ones):

- draft-or-unsure: a verified draft is the answer, anything else "not sure" + quote (no gate);
- gate, draft-or-unsure: the same behind the confidence gate;
- gate, draft-or-quote: behind the gate, a verified draft that holds the kind of thing asked for
  is the answer, otherwise the best evidence sentence itself, verbatim, is the answer;
- shipped: as draft-or-quote when the confidence is above rag.answer.answerability.SURE, as
  draft-or-unsure (with the draft's kind checked) between THRESHOLD and SURE.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _contains(text: str, golds: list[str]) -> bool:
    from rag.app.evaluation.scoring import contains

    return bool(golds) and bool(contains(text or "", golds))


def run(sets: list[Path], data_dir: Path, out: Path, k: int, every: int = 1) -> None:
    from rag.answer.answerability import confidence, has_asked_kind
    from rag.app.evaluation.datasets import load_dataset
    from rag.app.evaluation.running import ingest_dataset
    from rag.answer.chain import SAYS, QAChain
    from rag.llm import make_llm
    from rag.retrieval import Retriever
    from rag.settings import Settings

    class Recording(QAChain):
        draft: str | None = None

        def _verified(self, text, *args, **kwargs):
            self.draft = text
            return super()._verified(text, *args, **kwargs)

    settings = Settings(temperature=0.0, answerability_gate=False)
    llm = make_llm(settings)
    with out.open("w", encoding="utf-8") as sink:
        for path in sets:
            dataset = load_dataset(path)
            store, run_settings, _ = ingest_dataset(dataset, settings, data_dir / path.stem)
            chain = Recording(Retriever(store, run_settings), llm, run_settings)
            for i, q in enumerate(dataset.questions):
                if i % 2 == 0 or (i // 2) % every:
                    continue  # the test half only (the confidence model was fitted on the even ones)
                chain.draft = None
                answer = chain.ask(q.text, k=k)
                evidence = answer.evidence or []
                best = evidence[0].text if evidence else ""
                record = {
                    "set": path.stem, "i": i, "answerable": q.answerable, "answers": list(q.answers),
                    "status": answer.status, "answer": answer.answer, "draft": chain.draft,
                    "verified": answer.status == "answered" and not answer.answer.startswith(SAYS),
                    "confidence": confidence(q.text, answer.passages or [], evidence) if evidence else None,
                    "draft_kind": has_asked_kind(q.text, chain.draft) if chain.draft else 0.0,
                    "best_sentence": best, "best_has_gold": _contains(best, list(q.answers)),
                    "first_token": answer.timings.get("first_token"), "total": answer.timings.get("total"),
                }
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()


def replay(rows: list[dict], policy: str, threshold: float, sure: float = 0.0) -> list[tuple[str, str]]:
    """(status, answer text) per row under a policy."""
    out = []
    for r in rows:
        if r["status"] == "refused":
            out.append(("refused", ""))
            continue
        quote = r["best_sentence"]
        gated = policy != "draft-or-unsure" and (r["confidence"] is None or r["confidence"] < threshold)
        verified = r.get("verified", r["status"] == "answered")
        if gated:
            out.append(("unsure", quote))
        elif policy == "shipped" and r["confidence"] < sure:
            out.append(("answered", r["answer"]) if verified and r["draft_kind"] else ("unsure", quote))
        elif policy in ("gate, draft-or-quote", "shipped"):
            out.append(("answered", r["answer"]) if verified and r["draft_kind"] else ("answered", quote))
        else:
            out.append(("answered", r["answer"]) if verified else ("unsure", quote))
    return out


def table(path: Path) -> None:
    from rag.answer.answerability import SURE, THRESHOLD

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    policies = ["draft-or-unsure", "gate, draft-or-unsure", "gate, draft-or-quote", "shipped"]
    print(f"test half (odd-numbered questions), confidence threshold {THRESHOLD}, sure above {SURE}")
    print(f"{'set':<10}{'policy':<24}{'ans. contains gold':>20}{'answered correct':>18}"
          f"{'answerable unsure':>19}{'unanswerable unsure/refused':>29}")
    for name in dict.fromkeys(r["set"] for r in rows):
        test = [r for r in rows if r["set"] == name and r["i"] % 2 == 1]
        if not any(r["answerable"] for r in test) or all(r["answerable"] for r in test):
            print(f"{name:<10}(not enough records yet: {len(test)})")
            continue
        for policy in policies:
            got = replay(test, policy, THRESHOLD, SURE)
            ans = [(r, g) for r, g in zip(test, got) if r["answerable"]]
            una = [(r, g) for r, g in zip(test, got) if not r["answerable"]]
            contains = sum(_contains(text, r["answers"]) for r, (_, text) in ans) / len(ans)
            answered = [(r, text) for r, (s, text) in ans if s == "answered"]
            correct = sum(_contains(text, r["answers"]) for r, text in answered) / max(1, len(answered))
            unsure = sum(s != "answered" for _, (s, _) in ans) / len(ans)
            caught = sum(s != "answered" for _, (s, _) in una) / len(una)
            print(f"{name:<10}{policy:<24}{contains:>20.3f}{correct:>18.3f}{unsure:>19.3f}{caught:>29.3f}")
        print(f"{name:<10}n = {len(ans)} answerable, {len(una)} unanswerable")
        first = sorted(r["first_token"] for r in test if r.get("first_token") is not None)
        if first:
            print(f"{name:<10}time to first token p50 {first[len(first) // 2]:.3f} s (n={len(first)}, model called with the gate off)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, nargs="*")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--every", type=int, default=1, help="ask every n-th test question only")
    parser.add_argument("--table", type=Path, help="replay the policies on records written by a run")
    args = parser.parse_args()
    if args.table:
        table(args.table)
    else:
        run(args.sets, args.data_dir, args.out, args.k, args.every)
        table(args.out)


if __name__ == "__main__":
    main()
