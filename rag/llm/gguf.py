"""Read one string from a GGUF file's metadata without loading the model (pure Python).

The local runtimes need to know, before loading, whether a GGUF carries a chat template
(`tokenizer.chat_template`): a base model without one gets rag.llm.local's plain-text prompt.
The metadata sits at the start of the file; skipping the vocabulary arrays of a 262k-token
model takes ~0.1 s.
"""

from __future__ import annotations

import struct
from pathlib import Path

# GGUF value types -> struct format of one scalar (8: string, 9: array)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_MAX_METADATA = 512 << 20


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        value = struct.unpack_from("<" + fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> bytes:
        n = self.take("Q")
        value = self.data[self.pos : self.pos + n]
        if len(value) != n:
            raise ValueError("truncated GGUF metadata")
        self.pos += n
        return value

    def skip(self, kind: int) -> None:
        if kind == _STRING:
            self.string()
        elif kind == _ARRAY:
            item, n = self.take("I"), self.take("Q")
            if item in _SCALARS:
                self.pos += struct.calcsize(_SCALARS[item]) * n
            else:
                for _ in range(n):
                    self.skip(item)
        elif kind in _SCALARS:
            self.pos += struct.calcsize(_SCALARS[kind])
        else:
            raise ValueError(f"unknown GGUF value type {kind}")


def metadata_string(path: str | Path, key: str) -> str | None:
    """The string value of metadata `key` in the GGUF at `path`, or None if absent.

    Raises ValueError for a file that is not GGUF or whose metadata is cut short."""
    size = 8 << 20  # Gemma 3's metadata (262k-token vocabulary) is 6.5 MB
    while True:
        with open(path, "rb") as fh:
            data = fh.read(size)
        if data[:4] != b"GGUF":
            raise ValueError("not a GGUF file")
        try:
            return _find(_Reader(data), key)
        except (struct.error, ValueError):
            if len(data) < size or size >= _MAX_METADATA:
                raise ValueError("truncated GGUF metadata") from None
            size *= 4


def _find(r: _Reader, key: str) -> str | None:
    r.pos = 4
    r.take("I")  # version
    r.take("Q")  # tensors
    for _ in range(r.take("Q")):
        name, kind = r.string(), r.take("I")
        if name.decode("utf-8", "replace") == key and kind == _STRING:
            return r.string().decode("utf-8", "replace")
        r.skip(kind)
    return None


def has_chat_template(path: str | Path) -> bool:
    return bool(metadata_string(path, "tokenizer.chat_template"))
