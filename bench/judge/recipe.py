"""SQuAD 2.0-style unanswerable questions made by rule from a SQuAD-format eval set (seeded, reproducible).

    python bench/judge/recipe.py /work/shared/eval/xquad-en/xquad.en.json --out /tmp/judge/xquad-recipe.json
    python bench/judge/recipe.py /work/shared/eval/covid-qa/covid-qa.json --out /tmp/judge/covid-recipe.json

For each answerable question whose gold answer lies inside one sentence, the "window" is that
sentence and up to WINDOW sentences either side (a retrieved chunk's worth; COVID-QA contexts are
whole papers). From the question the SQuAD 2.0 recipe makes a near miss, each kind kept only when
the changed element is absent from the window (so nothing in it answers):
- entity: a capitalised name of the question that the window has, swapped for a name from
  another paragraph of the set that the window lacks;
- number: a number of the question that the window has, changed (+1..+9, or a year +/- 1..30);
- antonym: a word swapped for its opposite (exports/imports, first/last, medieval/modern, ...);
- negation: "not" after the question's first auxiliary ("Who was ..." -> "Who was not ...");
- attribute: the asked attribute swapped for a related one (population/area, born/died, ...);
- deleted: the original question, its answer sentence deleted from the window.
Each record also keeps the original answerable question with its window ("answerable").
Writes a JSON list of {kind, question, original, window: [sentences], answer_idx, answers};
with --squad also a SQuAD file for the chain's bench: the source's documents asked the recipe's
questions (is_impossible flags), "deleted" left out (bench/unanswerable.py builds that corpus).
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

WINDOW = 3
_PAIRS = """exports imports|export import|exported imported|first last|earliest latest|largest smallest|
biggest smallest|highest lowest|most least|more less|increase decrease|increased decreased|increases decreases|
before after|north south|east west|northern southern|eastern western|medieval modern|ancient modern|early late|
earlier later|maximum minimum|higher lower|positive negative|high low|major minor|older younger|oldest youngest|
win lose|won lost|begin end|began ended|start end|started ended|inside outside|above below|upper lower|
male female|men women|private public|internal external|strong weak|stronger weaker|rich poor|open closed|
success failure|successful unsuccessful|allowed forbidden|legal illegal|long short|longer shorter|longest shortest|
wet dry|hot cold|warmer colder|fast slow|faster slower|direct indirect|common rare|accept reject|accepted rejected|
entered left|buy sell|bought sold|east west|benefit harm|advantages disadvantages|effective ineffective|
symptomatic asymptomatic|acute chronic|infected uninfected|adults children|mild severe|survived died|
inhibit promote|inhibits promotes|resistant susceptible|upregulated downregulated|primary secondary"""
ANTONYMS: dict[str, str] = {}
for _pair in _PAIRS.replace("\n", "").split("|"):
    _a, _b = _pair.split()
    ANTONYMS.setdefault(_a, _b)
    ANTONYMS.setdefault(_b, _a)
_ATTR = """population area|born died|birth death|founded dissolved|built demolished|height weight|length width|
wife husband|father mother|son daughter|king queen|capital port|president vice-president|cost revenue|
budget debt|salary pension|author publisher|director producer|architect owner|mayor governor|
temperature pressure|speed mass|diameter depth|incidence mortality|sensitivity specificity|
symptoms treatment|vaccine drug|host vector|receptor ligand|prevalence incidence|dose duration"""
ATTRIBUTES: dict[str, str] = {}
for _pair in _ATTR.replace("\n", "").split("|"):
    _a, _b = _pair.split()
    ATTRIBUTES.setdefault(_a, _b)
    ATTRIBUTES.setdefault(_b, _a)
_AUX = re.compile(r"\b(is|was|are|were|did|does|do|can|could|has|had|have|will|would|should|may|might)\b", re.I)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b")
_NUM = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")


def _low(text: str) -> str:
    return " ".join(text.split()).lower()


def _names(text: str) -> list[str]:
    out = []
    for m in _NAME.finditer(text):
        if m.start() == 0 or text[: m.start()].rstrip().endswith(("?", ".")):  # a capital at the start
            continue
        out.append(m.group(0))
    return out


def swap_entity(q: str, window: str, pool: list[str], rng: random.Random) -> str | None:
    ours = [n for n in _names(q) if n in window]
    if not ours:
        return None
    old = rng.choice(ours)
    cands = [n for n in pool if n not in window and n != old and len(n.split()) == len(old.split())]
    if not cands:
        return None
    return q.replace(old, rng.choice(cands), 1)


def swap_number(q: str, window: str, rng: random.Random) -> str | None:
    ours = [m for m in _NUM.finditer(q) if m.group(0) in window]
    if not ours:
        return None
    m = rng.choice(ours)
    raw = m.group(0).replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    for _ in range(20):
        if raw.isdigit() and 1000 <= value <= 2100:
            new = str(int(value) + rng.choice([-1, 1]) * rng.randint(1, 30))
        elif raw.isdigit():
            new = str(int(value) + rng.randint(1, 9))
        else:
            new = f"{value + rng.randint(1, 9):g}"
        if new not in window:
            return q[: m.start()] + new + q[m.end() :]
    return None


def _swap_word(q: str, window: str, table: dict[str, str], rng: random.Random) -> str | None:
    low_window = _low(window)
    words = [m for m in re.finditer(r"[A-Za-z-]+", q) if m.group(0).lower() in table]
    rng.shuffle(words)
    for m in words:
        new = table[m.group(0).lower()]
        if re.search(rf"\b{re.escape(new)}\b", low_window):
            continue  # the window has the opposite too: it may still answer
        if m.group(0)[0].isupper():
            new = new[0].upper() + new[1:]
        return q[: m.start()] + new + q[m.end() :]
    return None


def negate(q: str) -> str | None:
    m = _AUX.search(q)
    if not m or re.search(r"\b(not|never|n't)\b", q):
        return None
    return q[: m.end()] + " not" + q[m.end() :]


def windows(context: str, start: int, end: int) -> tuple[list[str], int] | None:
    spans = sentence_spans(context)
    for i, (s, e) in enumerate(spans):
        if s <= start and end <= e:
            lo, hi = max(0, i - WINDOW), min(len(spans), i + WINDOW + 1)
            return [context[a:b] for a, b in spans[lo:hi]], i - lo
    return None


def build(path: Path, seed: int, per_kind: int) -> list[dict]:
    rng = random.Random(seed)
    data = json.load(open(path))["data"]
    items, pool = [], []
    for art in data:
        for p in art["paragraphs"]:
            pool += _names(p["context"])
            for qa in p["qas"]:
                if qa.get("is_impossible") or not qa.get("answers"):
                    continue
                a = qa["answers"][0]
                if p["context"][a["answer_start"] : a["answer_start"] + len(a["text"])] != a["text"]:
                    continue
                w = windows(p["context"], a["answer_start"], a["answer_start"] + len(a["text"]))
                if w and len(w[0]) >= 2:
                    items.append((qa["question"].strip(), w[0], w[1], [x["text"] for x in qa["answers"]]))
    pool = sorted(set(pool))
    rng.shuffle(items)
    out: list[dict] = []
    counts: dict[str, int] = {}

    def add(kind: str, question: str | None, orig: str, win: list[str], idx: int | None, answers: list[str]) -> None:
        if question and question != orig and counts.get(kind, 0) < per_kind:
            counts[kind] = counts.get(kind, 0) + 1
            out.append({"kind": kind, "question": question, "original": orig, "window": win,
                        "answer_idx": idx, "answers": answers})

    for q, win, idx, answers in items:
        text = " ".join(win)
        add("answerable", q + " ", q, win, idx, answers)  # (the trailing space only makes it differ from orig)
        add("entity", swap_entity(q, text, pool, rng), q, win, None, [])
        add("number", swap_number(q, text, rng), q, win, None, [])
        add("antonym", _swap_word(q, text, ANTONYMS, rng), q, win, None, [])
        add("negation", negate(q), q, win, None, [])
        add("attribute", _swap_word(q, text, ATTRIBUTES, rng), q, win, None, [])
        rest = [s for j, s in enumerate(win) if j != idx and not any(_low(x) in _low(s) for x in answers)]
        if len(rest) == len(win) - 1:
            add("deleted", q + " ", q, rest, None, [])
    for r in out:
        r["question"] = r["question"].strip()
    return out


def to_squad(records: list[dict], source: dict) -> dict:
    """The source set's documents, unchanged, asked the recipe's questions (all but "deleted",
    whose corpus differs: bench/unanswerable.py makes that one), in record order."""
    qas = []
    for i, r in enumerate(records):
        if r["kind"] == "deleted":
            continue
        answerable = r["kind"] == "answerable"
        qas.append({"id": f"r{i}-{r['kind']}", "question": r["question"], "is_impossible": not answerable,
                    "answers": [{"text": a, "answer_start": 0} for a in r["answers"]] if answerable else []})
    data = [{"title": a.get("title", ""), "paragraphs": [{"context": p["context"], "qas": []} for p in a["paragraphs"]]}
            for a in source["data"]]
    data[0]["paragraphs"][0]["qas"] = qas
    return {"version": "recipe", "data": data}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--squad", type=Path, help="also write the records as a SQuAD file")
    ap.add_argument("--per-kind", type=int, default=60)
    ap.add_argument("--seed", type=int, default=24)
    args = ap.parse_args()
    records = build(args.source, args.seed, args.per_kind)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, ensure_ascii=False, indent=0))
    if args.squad:
        args.squad.write_text(json.dumps(to_squad(records, json.load(open(args.source))), ensure_ascii=False))
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(json.dumps(kinds))


if __name__ == "__main__":
    main()
