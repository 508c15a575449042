"""An unanswerable-but-on-topic question set, made the SQuAD 2.0 way, from a SQuAD-format set.

    python bench/unanswerable.py ../shared/eval/xquad-en/xquad.en.json --split dev --n 100 \
        --out /tmp/rag-bench/xquad-unanswerable-dev.json
    rag eval /tmp/rag-bench/xquad-unanswerable-dev.json --answers --k 4

For N paragraphs of the split (dev: even-numbered paragraphs, test: odd), one question is chosen
and the sentence(s) holding its gold answer are deleted from that paragraph: the question stays
on topic (the rest of the paragraph is still there to be retrieved) but nothing answers it. It is
kept only if no gold answer string of it occurs anywhere else in the whole modified corpus. For
N other paragraphs of the split, left intact, one question is kept as answerable. Written as a
SQuAD file with "is_impossible" flags (all paragraphs of the set, so the corpus is the real one
minus the deleted sentences), under /tmp: generated at run time, never committed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.evidence import sentence_spans  # noqa: E402


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


def build(squad: dict, split: str, n: int) -> tuple[dict, int, int]:
    parity = 0 if split == "dev" else 1
    paragraphs = [p for article in squad["data"] for p in article["paragraphs"]]
    chosen = [i for i in range(len(paragraphs)) if i % 2 == parity]
    # Alternate: the 1st, 3rd, 5th... chosen paragraph loses a sentence, the others stay intact.
    to_break, to_keep = chosen[0::2][:n], chosen[1::2][:n]
    new_context: dict[int, str] = {}
    broken: dict[int, dict] = {}
    for i in to_break:
        for qa in paragraphs[i]["qas"]:
            golds = [a["text"] for a in qa.get("answers", [])]
            cut = delete_answer_sentences(paragraphs[i]["context"], golds) if golds else None
            if cut:
                new_context[i], broken[i] = cut, qa
                break
    corpus = " \n ".join(_norm(new_context.get(i, p["context"])) for i, p in enumerate(paragraphs))
    impossible = {
        i: qa for i, qa in broken.items()
        if not any(_norm(a["text"]) in corpus for a in qa["answers"])
    }
    data = []
    for article in squad["data"]:
        out_paragraphs = []
        for p in article["paragraphs"]:
            i = next(j for j, q in enumerate(paragraphs) if q is p)
            qas = []
            if i in impossible:
                qa = impossible[i]
                qas.append({"id": qa.get("id", ""), "question": qa["question"], "answers": [], "is_impossible": True})
            elif i in to_keep and p["qas"]:
                qa = p["qas"][0]
                qas.append({"id": qa.get("id", ""), "question": qa["question"], "answers": qa["answers"]})
            out_paragraphs.append({"context": new_context.get(i, p["context"]) if i in impossible else p["context"], "qas": qas})
        data.append({"title": article.get("title", ""), "paragraphs": out_paragraphs})
    answerable = sum(1 for i in to_keep if paragraphs[i]["qas"])
    return {"version": "unanswerable-" + split, "data": data}, len(impossible), answerable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", choices=["dev", "test"], default="dev")
    parser.add_argument("--n", type=int, default=100, help="unanswerable (and as many answerable) questions")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    squad = json.loads(args.dataset.read_text(encoding="utf-8"))
    doc, impossible, answerable = build(squad, args.split, args.n)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    print(f"{args.out}: {impossible} unanswerable and {answerable} answerable questions ({args.split} split of {args.dataset.name})")


if __name__ == "__main__":
    main()
