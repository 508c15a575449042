"""Export a judge checkpoint to int8 ONNX (rag/models/judge.onnx) and check int8 against fp32 on dev.

    python bench/judge/export.py --ckpt /work/judge-data/ckpt/last.pt --pairs /work/judge-data/pairs \
        --out rag/models/judge.onnx

fp32 export (TorchScript exporter, opset 17, dynamic batch and length), ONNX Runtime's BERT
fusion, then dynamic int8 quantization of every MatMul (per channel), as rag/onnx_embedding.py
does for the embedder. Prints the file size and, on --n dev pairs, the agreement of int8 and
fp32 (|dprob| mean / max, the same side of 0.5, AUC of each).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import build_model, embedder_dir, encode, load_tokenizer  # noqa: E402
from train import auc, collate, read_jsonl  # noqa: E402


def export(ckpt: Path, folder: Path, out: Path, work: Path) -> Path:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    model = build_model(folder, attn="eager")
    model.load_state_dict(torch.load(ckpt, map_location="cpu")["model"])
    model.eval()
    tok = load_tokenizer(folder)
    ids, mask, *_ = collate(tok, [{"q": "Who wrote it?", "sent": "It was written by a man.", "ctx": "", "label": 0},
                                   {"q": "When?", "sent": "In 1990 it rained a lot in the city.", "ctx": "Before.", "label": 1}])
    fp32, fused = work / "judge-fp32.onnx", work / "judge-fused.onnx"
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
                          output_names=["logit", "start", "end"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "logit": {0: "batch"},
                                        "start": axes, "end": axes},
                          opset_version=17, dynamo=False)
    cfg = model.bert.config
    opt = optimizer.optimize_model(str(fp32), model_type="bert", num_heads=cfg.num_attention_heads,
                                   hidden_size=cfg.hidden_size, opt_level=1)
    opt.save_model_to_file(str(fused))
    logging.getLogger().setLevel(logging.ERROR)
    out.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(fused), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": 1})
    return fp32


def probs(path: Path, tok, rows: list[dict]) -> list[float]:
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(rows), 32):
        ids, mask, *_ = collate(tok, rows[i : i + 32])
        logit, _, _ = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        out += (1 / (1 + np.exp(-logit))).tolist()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--embedder", type=Path, default=None)
    ap.add_argument("--n", type=int, default=600)
    args = ap.parse_args()
    folder = args.embedder or embedder_dir()
    tok = load_tokenizer(folder)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export(args.ckpt, folder, args.out, Path(tmp))
        import random

        dev = read_jsonl(args.pairs / "dev.jsonl")
        rows = random.Random(1).sample(dev, min(args.n, len(dev)))
        p32, p8 = probs(fp32, tok, rows), probs(args.out, tok, rows)
    labels = [r["label"] for r in rows]
    diff = [abs(a - b) for a, b in zip(p32, p8)]
    print(json.dumps({
        "size_mb": round(args.out.stat().st_size / 1e6, 2), "n": len(rows),
        "mean_abs_dprob": round(sum(diff) / len(diff), 4), "max_abs_dprob": round(max(diff), 4),
        "same_side_of_0.5": round(sum((a >= 0.5) == (b >= 0.5) for a, b in zip(p32, p8)) / len(rows), 4),
        "auc_fp32": round(auc(p32, labels), 4), "auc_int8": round(auc(p8, labels), 4),
    }))
    assert encode  # (the encoding used is model.encode, via train.collate)


if __name__ == "__main__":
    main()
