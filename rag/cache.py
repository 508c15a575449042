"""Where derived files live: $XDG_CACHE_HOME/groundwork-rag (~/.cache by default).

Assembled GGUF models go to `models/`, exported ONNX embedders to `embedders/`. Everything here
can be deleted; it is rebuilt from the installed packages on next use. Building takes a while,
once: `preparing` says so in one line on stderr (stdout may carry JSON), and nothing else is
printed on the way (the libraries' own warnings and progress bars are silenced where it is built).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "groundwork-rag"


def preparing(what: str, seconds: int) -> None:
    """One line on stderr for a first-use step: "Preparing the embedding model (once, ~20 s)…"."""
    print(f"Preparing {what} (once, ~{seconds} s)…", file=sys.stderr, flush=True)
