"""A document's identity in the store: `document_id` names the file (its absolute path), and
`file_hash` one version of it (its bytes, salted with the chunking settings). Its own module so
that both the one-file path (ingest/pipeline.py) and the batched one (ingest/batching.py) can
use them without importing each other."""

from __future__ import annotations

import hashlib
from pathlib import Path


def document_id(path: str | Path) -> str:
    """Stable id of a document: its absolute path, so `docs/a.pdf` and `./docs/a.pdf` are one."""
    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]


def file_hash(path: Path, salt: str) -> str:
    digest = hashlib.sha256(salt.encode())
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
