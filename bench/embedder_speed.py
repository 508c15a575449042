"""The embedders alone, same texts, same run: chunks/s and closeness to fp32.

    python bench/embedder_speed.py ../shared/eval/covid-qa/covid-qa.json [--n 384]

N chunks of 190 words of the dataset's contexts (past the 254 tokens MiniLM reads, so every chunk
is a full-length input), embedded in batches of 32 by: torch fp32 (sentence-transformers, what the
tutorial pipeline runs), torch with bfloat16 autocast (fast only on CPUs with AMX or AVX512-BF16;
not a backend of the project, measured as a candidate), and the project's int8 ONNX exports
(recipe 2 and 3, rag.onnx_embedding). Best of 2 timed passes after a warm-up batch; "cos to fp32"
is the mean cosine of each chunk's vector to torch fp32's. No pipeline around it: what `rag ingest`
adds (reading, chunking, writing, on the same two cores) is bench/ingest_speed.py's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def chunks_of(dataset: Path, n: int, words: int = 190) -> list[str]:
    data = json.loads(dataset.read_text(encoding="utf-8"))["data"]
    text = " ".join(p["context"] for article in data for p in article["paragraphs"]).split()
    out = [" ".join(text[i : i + words]) for i in range(0, len(text) - words, words)][:n]
    if len(out) < n:
        raise SystemExit(f"{dataset} has only {len(out)} chunks of {words} words")
    return out


def timed(texts: list[str], embed) -> tuple[float, np.ndarray]:
    embed(texts[:32])  # warm-up
    best, out = float("inf"), None
    for _ in range(2):
        t0 = time.perf_counter()
        out = np.asarray(embed(texts), dtype=np.float32)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--n", type=int, default=384)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from rag.embeddings import packaged_model_path
    from rag.onnx_embedding import load_onnx_embeddings

    texts = chunks_of(args.dataset, args.n)
    folder = packaged_model_path()
    model = SentenceTransformer(str(folder), device="cpu")

    def fp32(t):
        return model.encode(t, batch_size=32, normalize_embeddings=True)

    def bf16(t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.encode(t, batch_size=32, normalize_embeddings=True)

    runs = [("torch fp32 (the tutorial's)", fp32), ("torch bf16 autocast (candidate)", bf16)]
    for recipe in (2, 3):
        embeddings, _ = load_onnx_embeddings(folder, 32, recipe)
        runs.append((f"onnx int8 recipe {recipe}" + (" (default)" if recipe == 3 else ""), embeddings.embed_documents))
    print(f"# {len(texts)} chunks of 190 words; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    print("| embedder | chunks/s | vs torch fp32 | cos to fp32 |\n|---|---:|---:|---:|")
    reference, base = None, None
    for name, embed in runs:
        seconds, vectors = timed(texts, embed)
        if reference is None:
            reference, base = vectors, seconds
        cos = float(np.mean(np.sum(vectors * reference, axis=1)))
        print(f"| {name} | {len(texts) / seconds:.1f} | {base / seconds:.2f}× | {cos:.4f} |", flush=True)
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
