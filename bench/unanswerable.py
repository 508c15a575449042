"""An unanswerable-but-on-topic question set, made the SQuAD 2.0 way, from a SQuAD-format set.

    python bench/unanswerable.py ../shared/eval/xquad-en/xquad.en.json --n 100 \
        --out /tmp/rag-bench/xquad-unanswerable.json
    rag eval /tmp/rag-bench/xquad-unanswerable.json --answers --k 4 --report R.json

For N evenly spaced even-numbered paragraphs, one question is chosen and the sentence(s) holding
its gold answer are deleted from that paragraph: the question stays on topic (the rest of the
paragraph is still there to be retrieved) but nothing answers it. It is kept only if no gold answer
string of it occurs anywhere else in the whole modified corpus. For N odd-numbered paragraphs,
left intact, their first question is kept as answerable. Questions come in document order, so
even- and odd-numbered rows of a report are two halves (dev / test) with both kinds. Written as a
SQuAD file with "is_impossible" flags (all paragraphs of the set, so the corpus is the real one
minus the deleted sentences), under /tmp: generated at run time, never committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.answer.evidence import sentence_spans  # noqa: E402


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def delete_answer_sentences(context: str, answers: list[str]) -> str | None:
    """The context without every sentence that holds one of the answers; None when none does."""
    spans = sentence_spans(context)
    wanted = [_norm(a) for a in answers if a.strip()]
    drop = [(s, e) for s, e in spans if any(a in _norm(context[s:e]) for a in wanted)]
    if not drop:
        return None
    out, last = [], 0
    for s, e in drop:
        out.append(context[last:s])
        last = e
    out.append(context[last:])
    text = " ".join(" ".join(out).split())
    return text if text and not any(a in _norm(text) for a in wanted) else None


def _spaced(items: list[int], n: int) -> list[int]:
    step = max(1, len(items) // n)
    return items[::step][:n]


def _spaced_items(items: list, n: int) -> list:
    step = max(1, len(items) // n)
    return items[::step][:n]


def build(squad: dict, n: int, per_paragraph: int = 1) -> tuple[dict, int, int]:
    """n paragraphs broken (up to per_paragraph questions each made unanswerable), n kept intact
    (per_paragraph questions each, answerable)."""
    paragraphs = [p for article in squad["data"] for p in article["paragraphs"]]
    to_break = _spaced([i for i in range(len(paragraphs)) if i % 2 == 0], n)
    to_keep = _spaced([i for i in range(len(paragraphs)) if i % 2 == 1], n)
    new_context: dict[int, str] = {}
    broken: dict[int, list[dict]] = {}
    for i in to_break:
        for qa in paragraphs[i]["qas"]:
            golds = [a["text"] for a in qa.get("answers", [])]
            current = new_context.get(i, paragraphs[i]["context"])
            cut = delete_answer_sentences(current, golds) if golds else None
            if cut:
                new_context[i] = cut
                broken.setdefault(i, []).append(qa)
                if len(broken[i]) == per_paragraph:
                    break
    corpus = " \n ".join(_norm(new_context.get(i, p["context"])) for i, p in enumerate(paragraphs))
    impossible = {
        i: [qa for qa in qas if not any(_norm(a["text"]) in corpus for a in qa["answers"])]
        for i, qas in broken.items()
    }
    data = []
    for article in squad["data"]:
        out_paragraphs = []
        for p in article["paragraphs"]:
            i = next(j for j, q in enumerate(paragraphs) if q is p)
            qas = []
            if impossible.get(i):
                for qa in impossible[i]:
                    qas.append({"id": qa.get("id", ""), "question": qa["question"], "answers": [], "is_impossible": True})
            elif i in to_keep:
                for qa in _spaced_items(p["qas"], per_paragraph):
                    qas.append({"id": qa.get("id", ""), "question": qa["question"], "answers": qa["answers"]})
            out_paragraphs.append({"context": new_context[i] if i in new_context else p["context"], "qas": qas})
        data.append({"title": article.get("title", ""), "paragraphs": out_paragraphs})
    answerable = sum(len(_spaced_items(paragraphs[i]["qas"], per_paragraph)) for i in to_keep)
    return {"version": "unanswerable", "data": data}, sum(map(len, impossible.values())), answerable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--n", type=int, default=100, help="paragraphs to break (and as many to keep intact)")
    parser.add_argument("--per-paragraph", type=int, default=1,
                        help="questions per paragraph (COVID-QA has 98 long paragraphs: use 3)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    squad = json.loads(args.dataset.read_text(encoding="utf-8"))
    doc, impossible, answerable = build(squad, args.n, args.per_paragraph)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    print(f"{args.out}: {impossible} unanswerable and {answerable} answerable questions (from {args.dataset.name})")


if __name__ == "__main__":
    main()
