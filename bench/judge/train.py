"""Fine-tune the packaged MiniLM-L6 as the judge (cross-encoder + answer-span head), on CPU.

    python bench/judge/train.py --pairs /work/judge-data/pairs --out /work/judge-data/ckpt \
        --epochs 2 --threads 2

Loss: binary cross-entropy on "this sentence answers the question" + 0.5 x span cross-entropy
(start and end over the sentence's tokens, answering pairs only). Pairs of kind "plausible" (the
sentence holding an unanswerable question's plausible answer) are repeated --plausible-repeat
times per epoch. Saves <out>/last.pt every --ckpt-minutes and at the end of each epoch, logs dev
AUC / accuracy / answer recall / plausible rejection to <out>/train.log (dev: a fixed sample of
dev.jsonl, never trained on). --resume continues from <out>/last.pt.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import build_model, encode, load_tokenizer  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def collate(tok, rows: list[dict]):
    import torch

    encs = [encode(tok, r["q"], r["sent"], r.get("ctx", ""), tuple(r["span"]) if r.get("span") else None) for r in rows]
    n = max(len(e[0]) for e in encs)
    ids = torch.zeros(len(rows), n, dtype=torch.long)
    mask = torch.zeros(len(rows), n, dtype=torch.long)
    smask = torch.zeros(len(rows), n, dtype=torch.bool)
    start = torch.full((len(rows),), -100, dtype=torch.long)
    end = torch.full((len(rows),), -100, dtype=torch.long)
    for i, (tids, (a, b), target) in enumerate(encs):
        ids[i, : len(tids)] = torch.tensor(tids)
        mask[i, : len(tids)] = 1
        smask[i, a:b] = True
        if target is not None and rows[i]["label"] == 1:
            start[i], end[i] = target
    labels = torch.tensor([float(r["label"]) for r in rows])
    return ids, mask, smask, start, end, labels


def auc(scores: list[float], labels: list[int]) -> float:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rp = sum(r for r, y in zip(ranks, labels) if y)
    return (rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def evaluate(model, tok, rows: list[dict], batch: int = 64) -> dict:
    import torch

    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            ids, mask, *_ = collate(tok, rows[i : i + batch])
            logit, _, _ = model(ids, mask)
            probs += torch.sigmoid(logit).tolist()
    model.train()
    labels = [r["label"] for r in rows]
    out = {"auc": round(auc(probs, labels), 4),
           "acc@0.5": round(sum((p >= 0.5) == bool(y) for p, y in zip(probs, labels)) / len(rows), 4)}
    for kind, want in (("answer", 1), ("plausible", 0), ("other", 0)):
        ps = [p for p, r in zip(probs, rows) if r["kind"] == kind]
        if ps:
            out[f"{kind}_ok@0.5"] = round(sum((p >= 0.5) == bool(want) for p in ps) / len(ps), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--embedder", default=None, help="the embedder's model folder (default: the installed package's)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--plausible-repeat", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-minutes", type=float, default=15.0)
    ap.add_argument("--dev-sample", type=int, default=900)
    ap.add_argument("--freeze-layers", type=int, default=2, help="freeze the embeddings and this many lower layers")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    import torch

    from model import embedder_dir

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    folder = Path(args.embedder) if args.embedder else embedder_dir()
    tok = load_tokenizer(folder)
    model = build_model(folder)
    if args.freeze_layers >= 0:
        for p in model.bert.embeddings.parameters():
            p.requires_grad = False
        for layer in model.bert.encoder.layer[: args.freeze_layers]:
            for p in layer.parameters():
                p.requires_grad = False
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train.log", "a")

    def say(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    train = read_jsonl(Path(args.pairs) / "train.jsonl")
    dev_all = read_jsonl(Path(args.pairs) / "dev.jsonl")
    plaus = [r for r in dev_all if r["kind"] == "plausible"]
    rest = [r for r in dev_all if r["kind"] != "plausible"]
    dev = plaus + random.Random(0).sample(rest, min(len(rest), max(0, args.dev_sample - len(plaus))))
    epoch_rows = train + [r for r in train if r["kind"] == "plausible"] * (args.plausible_repeat - 1)
    steps_per_epoch = math.ceil(len(epoch_rows) / args.batch)
    total = int(steps_per_epoch * args.epochs)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / (total - warm))))
    step = 0
    if args.resume and (out / "last.pt").exists():
        state = torch.load(out / "last.pt", map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        for _ in range(step):
            sched.step()
        say(f"resumed at step {step}")
    say(f"train pairs {len(train)} (epoch rows {len(epoch_rows)}), dev sample {len(dev)}, steps {total}")

    def save(tag: str) -> None:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, out / "last.pt.tmp")
        (out / "last.pt.tmp").replace(out / "last.pt")
        say(f"saved step {step} ({tag}) dev {json.dumps(evaluate(model, tok, dev))}")

    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    model.train()
    last_save = time.time()
    t0 = time.time()
    epoch = step // steps_per_epoch
    while step < total:
        erng = random.Random(args.seed * 1000 + epoch)
        rows = epoch_rows[:]
        erng.shuffle(rows)
        # bucket by length within chunks, so a batch pads little
        chunks = [rows[i : i + args.batch * 50] for i in range(0, len(rows), args.batch * 50)]
        batches = []
        for c in chunks:
            c.sort(key=lambda r: len(r["q"]) + len(r["sent"]) + len(r.get("ctx", "")))
            batches += [c[i : i + args.batch] for i in range(0, len(c), args.batch)]
        erng.shuffle(batches)
        skip = step - epoch * steps_per_epoch
        for b in batches[skip:]:
            if step >= total:
                break
            ids, mask, smask, start, end, labels = collate(tok, b)
            logit, sl, el = model(ids, mask)
            neg = torch.finfo(sl.dtype).min / 2
            sl = sl.masked_fill(~smask, neg)
            el = el.masked_fill(~smask, neg)
            loss = bce(logit, labels)
            if (start >= 0).any():
                loss = loss + 0.25 * (ce(sl, start) + ce(el, end))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 25 == 0:
                rate = (time.time() - t0) / 25
                t0 = time.time()
                say(f"step {step}/{total} loss {loss.item():.4f} {rate:.2f}s/step lr {sched.get_last_lr()[0]:.2e}")
            if time.time() - last_save > args.ckpt_minutes * 60:
                save("timer")
                last_save = time.time()
        epoch += 1
        save(f"epoch {epoch}")
        last_save = time.time()
    say("done")


if __name__ == "__main__":
    main()
