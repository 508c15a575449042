"""How well rag.answer.verify tells supported claims from unsupported ones, on labelled pairs.

    python bench/support_check.py ../shared/eval/xquad-en/xquad.en.json ../shared/eval/covid-qa/covid-qa.json \
        --n 300 [--grid]

For each sampled question (evenly spaced), the evidence is the sentence of its paragraph that holds
the gold answer, with the sentence before it; its paragraph is the context names may come from
(as the chain passes the passage). Claims checked against it:
- true sentence: the answer-bearing sentence itself, and the phrase claim "gold answer" for the
  question (what a small model writes) - both should be accepted;
- swapped: the same sentence, and the phrase, with the answer replaced by another question's gold
  answer of the same kind (number / name / other) from another paragraph, one that does not occur
  in the evidence - should be flagged;
- unrelated: a sentence of another article - should be flagged.
Prints, per set: acceptance of true claims (recall), flag rate of each negative kind, precision of
"supported". --grid prints the same for a grid of (max_novel, min_similarity) on the dev half
(even-numbered questions), and the chosen pair on the test half (odd).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.answer.evidence import sentence_spans  # noqa: E402


def kind(answer: str) -> str:
    if any(ch.isdigit() for ch in answer):
        return "number"
    if answer[:1].isupper():
        return "name"
    return "other"


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def make_pairs(path: Path, n: int, seed: int = 0) -> list[dict]:
    squad = json.loads(path.read_text(encoding="utf-8"))
    items = []
    for a, article in enumerate(squad["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            spans = sentence_spans(context)
            for qa in paragraph["qas"]:
                answers = [x["text"].strip() for x in qa.get("answers", []) if x["text"].strip()]
                if not answers:
                    continue
                gold = answers[0]
                idx = next((i for i, (s, e) in enumerate(spans) if _norm(gold) in _norm(context[s:e])), None)
                if idx is None:
                    continue
                s, e = spans[idx]
                prev = spans[idx - 1][0] if idx else s
                items.append({"article": a, "paragraph": (a, p), "question": qa["question"], "gold": gold,
                              "sentence": context[s:e], "evidence": context[prev:e], "context": context,
                              "others": [context[x:y] for x, y in spans]})
    rng = random.Random(seed)
    step = max(1, len(items) // n)
    sample = items[::step][:n]
    by_kind: dict[str, list[dict]] = {}
    for it in items:
        by_kind.setdefault(kind(it["gold"]), []).append(it)
    pairs = []
    for i, it in enumerate(sample):
        split = "dev" if i % 2 == 0 else "test"
        ev, q, gold = it["evidence"], it["question"], it["gold"]
        ctx = it["context"]
        pairs.append({"split": split, "label": True, "type": "true sentence", "context": ctx, "claim": it["sentence"], "evidence": ev, "question": q})
        pairs.append({"split": split, "label": True, "type": "true phrase", "context": ctx, "claim": gold, "evidence": ev, "question": q})
        candidates = [o["gold"] for o in by_kind[kind(gold)]
                      if o["paragraph"] != it["paragraph"] and _norm(o["gold"]) not in _norm(it["context"])]
        if candidates:
            swap = rng.choice(candidates)
            pairs.append({"split": split, "label": False, "type": "swapped sentence", "context": ctx,
                          "claim": it["sentence"].replace(gold, swap, 1), "evidence": ev, "question": q, "kind": kind(gold)})
            pairs.append({"split": split, "label": False, "type": "swapped phrase", "context": ctx, "claim": swap, "evidence": ev,
                          "question": q, "kind": kind(gold)})
        other = rng.choice([o for o in items if o["article"] != it["article"]])
        pairs.append({"split": split, "label": False, "type": "unrelated sentence", "context": ctx, "claim": other["sentence"],
                      "evidence": ev, "question": q})
    return pairs


class CachedEmbeddings:
    """Embeddings computed once, in batches, for every text the checks will compare."""

    def __init__(self, embeddings, texts: list[str], batch: int = 64):
        self._embeddings = embeddings
        unique = list(dict.fromkeys(texts))
        vectors = []
        for i in range(0, len(unique), batch):
            vectors.extend(embeddings.embed_documents(unique[i : i + batch]))
        self._cache = dict(zip(unique, vectors))

    def embed_documents(self, texts: list[str]):
        missing = [t for t in texts if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._embeddings.embed_documents(missing)))
        return [self._cache[t] for t in texts]


def texts_to_embed(pairs: list[dict]) -> list[str]:
    import re

    out = []
    for p in pairs:
        claim = re.sub(r"\[\d+\]", " ", p["claim"]).strip()
        out += [p["evidence"], claim, f"{p['question']} {claim}"]
    return out


def judge(pairs: list[dict], embeddings, **thresholds) -> list[bool]:
    from rag.answer.verify import verify

    return [verify(p["claim"], p["evidence"], p["question"], embeddings, context=p["context"], **thresholds).supported
            for p in pairs]


def summary(pairs: list[dict], accepted: list[bool]) -> dict:
    out = {}
    for t in ("true sentence", "true phrase", "swapped sentence", "swapped phrase", "unrelated sentence"):
        got = [a for p, a in zip(pairs, accepted) if p["type"] == t]
        out[t] = (sum(got) / len(got) if got else None, len(got))
    positives = [a for p, a in zip(pairs, accepted) if p["label"]]
    chosen = [p["label"] for p, a in zip(pairs, accepted) if a]
    out["recall"] = sum(positives) / len(positives) if positives else None
    out["precision"] = sum(chosen) / len(chosen) if chosen else None
    swapped = [not a for p, a in zip(pairs, accepted) if p["type"].startswith("swapped")]
    out["swapped flagged"] = sum(swapped) / len(swapped) if swapped else None
    return out


def show(name: str, s: dict) -> None:
    print(f"{name}: true sentences accepted {s['true sentence'][0]:.3f} (n={s['true sentence'][1]}), "
          f"true phrases accepted {s['true phrase'][0]:.3f}, swapped sentences flagged {1 - s['swapped sentence'][0]:.3f} "
          f"(n={s['swapped sentence'][1]}), swapped phrases flagged {1 - s['swapped phrase'][0]:.3f}, "
          f"unrelated flagged {1 - s['unrelated sentence'][0]:.3f}; precision {s['precision']:.3f}, recall {s['recall']:.3f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", type=Path, nargs="+")
    parser.add_argument("--n", type=int, default=300, help="questions per set (evenly spaced)")
    parser.add_argument("--grid", action="store_true")
    args = parser.parse_args()

    from rag.embeddings import make_embedder
    from rag.settings import Settings
    from rag.answer.verify import MAX_NOVEL, MIN_SIMILARITY

    sets = {path.name: make_pairs(path, args.n) for path in args.datasets}
    embeddings = CachedEmbeddings(make_embedder(Settings()).embeddings,
                                  [t for pairs in sets.values() for t in texts_to_embed(pairs)])
    if args.grid:
        grid = [(nv, ms) for nv in (0.0, 0.2, 0.34, 0.5) for ms in (0.2, 0.3, 0.35, 0.4, 0.5)]
        print(f"{'max_novel':>9} {'min_sim':>7} " + " ".join(f"{name[:14]:>30}" for name in sets))
        for nv, ms in grid:
            cells = []
            for pairs in sets.values():
                dev = [p for p in pairs if p["split"] == "dev"]
                s = summary(dev, judge(dev, embeddings, max_novel=nv, min_similarity=ms))
                cells.append(f"acc {s['true sentence'][0]:.2f}/{s['true phrase'][0]:.2f} swp {s['swapped flagged']:.2f} unr {1 - s['unrelated sentence'][0]:.2f}")
            print(f"{nv:>9.2f} {ms:>7.2f} " + " ".join(f"{c:>30}" for c in cells), flush=True)
    print(f"# defaults max_novel={MAX_NOVEL}, min_similarity={MIN_SIMILARITY}; "
          f"{args.n} questions per set; dev = even-numbered, test = odd-numbered questions")
    for name, pairs in sets.items():
        for split in ("dev", "test"):
            part = [p for p in pairs if p["split"] == split]
            show(f"{name} {split}", summary(part, judge(part, embeddings)))


if __name__ == "__main__":
    main()
