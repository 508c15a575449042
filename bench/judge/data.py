"""Build the judge's sentence-pair data from SQuAD 2.0-format TRAIN files (never dev, XQuAD, COVID-QA).

    python bench/judge/data.py --train /work/judge-data/raw/PhongNTDo+guide_train_MRC_transformers.train-v2.0.json \
        --exclude /work/shared/eval/xquad-en/xquad.en.json --out /work/judge-data/pairs

Each question of a paragraph gives pairs (question, sentence, context = the previous sentence):
- answerable: the sentence holding the answer = 1 (with the answer's character span in it); up to
  NEG_PER_Q other sentences of the paragraph = 0 (the one sharing most words with the question,
  then random ones), never a sentence that also holds the answer text;
- unanswerable (is_impossible): the sentence holding a `plausible_answers` span = 0 (kind
  "plausible", the crowd-written near miss), plus up to NEG_PER_Q other sentences = 0.
Articles are split into train and dev by title (`--dev-titles`); dev is never trained on.
Writes train.jsonl, dev.jsonl and stats.json under --out. Sentences are cut by the chain's own
splitter (rag.answer.evidence.sentence_spans), so the judge sees sentences as the chain will cut them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rag.answer.evidence import sentence_spans  # noqa: E402

NEG_PER_Q = 2
DEV_TITLES = ("Spectre_(2015_film)", "To_Kill_a_Mockingbird", "Solar_energy")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def _sentence_of(spans: list[tuple[int, int]], start: int, end: int) -> int | None:
    for i, (s, e) in enumerate(spans):
        if s <= start and end <= e:
            return i
    return None


def paragraph_pairs(title: str, context: str, qas: list[dict], rng: random.Random) -> list[dict]:
    spans = sentence_spans(context)
    sents = [context[s:e] for s, e in spans]
    prev = [""] + sents[:-1]
    out = []
    for qa in qas:
        q = qa["question"].strip()
        impossible = bool(qa.get("is_impossible"))
        answers = qa.get("plausible_answers" if impossible else "answers") or []
        if not answers or not q:
            continue
        a = answers[0]
        start, text = a["answer_start"], a["text"]
        if context[start : start + len(text)] != text:
            continue
        i = _sentence_of(spans, start, start + len(text))
        if i is None:  # the answer crosses a sentence boundary: no single sentence answers
            continue
        base = {"q": q, "article": title, "qid": qa.get("id", "")}
        s0 = spans[i][0]
        out.append(dict(base, sent=sents[i], ctx=prev[i], label=0 if impossible else 1,
                        span=None if impossible else [start - s0, start - s0 + len(text)],
                        kind="plausible" if impossible else "answer"))
        texts = {x["text"] for x in (qa.get("answers") or []) + (qa.get("plausible_answers") or [])}
        others = [j for j in range(len(sents)) if j != i and not any(t in sents[j] for t in texts)]
        if not others:
            continue
        qw = _words(q)
        best = max(others, key=lambda j: len(qw & _words(sents[j])))
        rest = [j for j in others if j != best]
        picks = [best] + rng.sample(rest, min(len(rest), NEG_PER_Q - 1))
        for j in picks:
            out.append(dict(base, sent=sents[j], ctx=prev[j], label=0, span=None,
                            kind="impossible_other" if impossible else "other"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="+", required=True, help="SQuAD 2.0-format train files")
    ap.add_argument("--exclude", nargs="*", default=[], help="eval files whose article titles must not be trained on")
    ap.add_argument("--dev-titles", nargs="*", default=list(DEV_TITLES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    banned = set()
    for f in args.exclude:
        banned |= {a.get("title", "") for a in json.load(open(f))["data"]}
    seen_titles: set[str] = set()
    train, dev = [], []
    for f in args.train:
        for art in json.load(open(f))["data"]:
            title = art["title"]
            if title in banned:
                raise SystemExit(f"{title} is in an eval set: refusing to train on it")
            if title in seen_titles:
                continue  # the same article from a second copy
            seen_titles.add(title)
            for p in art["paragraphs"]:
                pairs = paragraph_pairs(title, p["context"], p["qas"], rng)
                (dev if title in args.dev_titles else train).extend(pairs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = {}
    for name, rows in (("train", train), ("dev", dev)):
        with open(out / f"{name}.jsonl", "w") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        kinds: dict[str, int] = {}
        for r in rows:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        stats[name] = {"pairs": len(rows), "articles": len({r["article"] for r in rows}),
                       "questions": len({(r["article"], r["q"]) for r in rows}), "kinds": kinds}
    stats["titles"] = sorted(seen_titles)
    stats["dev_titles"] = list(args.dev_titles)
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    print(json.dumps({k: stats[k] for k in ("train", "dev")}, indent=1))


if __name__ == "__main__":
    main()
