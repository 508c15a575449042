"""Distinct synthetic chunks for latency and scale benchmarks, grown from a real collection.

Copying each real chunk N times (what bench/query_phases.py did before issue 30) makes every
posting list N times longer than a real corpus of that size has: a term in 1 chunk of 500 is then
in 200 of 100,000, and the vocabulary stops growing. A real corpus of the same kind keeps its
words' frequencies and keeps bringing new words (Heaps' law: types ~ tokens ** beta; COVID-QA's
own halves give beta 0.59). So each synthetic token is

- with probability 1 - TAIL a real word, drawn with its frequency in the real collection
  (lowercased \w+ runs, stopwords included): a question's common words stay common, its rare
  words rare, and their document frequencies grow with the corpus as they would;
- with probability TAIL a made-up word ("qabxe", letters only), drawn with probability
  ~ 1 / rank over VOCAB of them (Zipf): the new words a bigger corpus brings. With TAIL 0.03
  the vocabulary at 10k / 100k / 1M chunks is ~38k / ~140k / ~650k types, what Heaps' law with
  COVID-QA's beta predicts (~41k / ~160k / ~620k).

Each synthetic chunk has the word count of a random real chunk; its vector is a random real
chunk's plus N(0, 0.01) noise per dimension, renormalised (cosine ~0.98 to it): nothing is
embedded, which is what lets the collection reach 1M chunks here; its metadata is that real
chunk's, with the doc_id made unique per 50 synthetic chunks.

The real chunks come first, unchanged (the questions' answers are in the collection); everything
is drawn from a fixed seed.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterator

import numpy as np

VOCAB = 2_000_000  # made-up words
TAIL = 0.03  # the share of tokens that are made-up words
_WORD = re.compile(r"\w+")


def made_up_word(i: int) -> str:
    letters = []
    i += 26 ** 3  # at least four letters
    while i:
        i, r = divmod(i, 26)
        letters.append(chr(97 + r))
    return "q" + "".join(letters)


class SyntheticCorpus:
    """Real chunks (ids, texts, metadatas, embeddings) and a generator of distinct synthetic ones."""

    def __init__(self, ids: list[str], texts: list[str], metadatas: list[dict], embeddings, seed: int = 0):
        self.ids, self.texts, self.metadatas = ids, texts, metadatas
        self.vectors = np.asarray(embeddings, dtype=np.float32)
        counts = Counter(w for t in texts for w in _WORD.findall(t.lower()))
        self.real_words = np.array(list(counts), dtype=object)
        self.real_cdf = np.cumsum(np.array(list(counts.values()), np.float64) / sum(counts.values()))
        self.new_words = np.array([made_up_word(i) for i in range(VOCAB)], dtype=object)
        p = 1.0 / np.arange(1, VOCAB + 1)
        self.new_cdf = np.cumsum(p / p.sum())
        self.lengths = np.array([max(1, len(_WORD.findall(t))) for t in texts])
        self.rng = np.random.default_rng(seed)

    def _words(self, n: int) -> np.ndarray:
        tail = self.rng.random(n) < TAIL
        words = np.empty(n, dtype=object)
        real = np.searchsorted(self.real_cdf, self.rng.random(int((~tail).sum())))
        words[~tail] = self.real_words[np.minimum(real, len(self.real_words) - 1)]
        new = np.searchsorted(self.new_cdf, self.rng.random(int(tail.sum())))
        words[tail] = self.new_words[np.minimum(new, VOCAB - 1)]
        return words

    @classmethod
    def from_store(cls, store, seed: int = 0) -> "SyntheticCorpus":
        got = store.collection.get(include=["documents", "metadatas", "embeddings"])
        return cls(got["ids"], got["documents"], got["metadatas"], got["embeddings"], seed)

    def batches(self, size: int, batch: int = 5000) -> Iterator[tuple[list[str], list[str], list[dict], np.ndarray]]:
        """`size` chunks in batches: the real ones first, then synthetic ones (ids syn-<n>)."""
        n_real = len(self.ids)
        for start in range(0, size, batch):
            stop = min(size, start + batch)
            ids, texts, metas, vecs = [], [], [], []
            real = range(start, min(stop, n_real))
            ids += [self.ids[i] for i in real]
            texts += [self.texts[i] for i in real]
            metas += [self.metadatas[i] for i in real]
            vecs.append(self.vectors[list(real)])
            k = stop - max(start, n_real)
            if k > 0:
                src = self.rng.integers(0, n_real, size=k)
                lengths = self.lengths[self.rng.integers(0, n_real, size=k)]
                words = self._words(int(lengths.sum()))
                ends = np.cumsum(lengths)
                texts += [" ".join(words[e - n : e]) for e, n in zip(ends, lengths)]
                first = max(start, n_real)
                ids += [f"syn-{first + j}" for j in range(k)]
                metas += [{**self.metadatas[s], "doc_id": f"syn-doc-{(first + j) // 50}"} for j, s in enumerate(src)]
                noisy = self.vectors[src] + self.rng.normal(0, 0.01, size=(k, self.vectors.shape[1])).astype(np.float32)
                vecs.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
            yield ids, texts, metas, np.concatenate(vecs)
