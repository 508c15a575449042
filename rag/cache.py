"""Where derived files live: $XDG_CACHE_HOME/groundwork-rag (~/.cache by default).

Assembled GGUF models go to `models/`, exported ONNX embedders to `embedders/`. Everything here
can be deleted; it is rebuilt from the installed packages on next use.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "groundwork-rag"
