"""The chat app in a browser: `python app.py`, `rag serve`, or a Hugging Face Space.

`demo` is built at import time (what Spaces and `gradio app.py` expect); it launches only when
run as a script. Settings come from RAG_* variables or .env (see README).
"""

import os

from rag.app.web import build_app, launch
from rag.settings import load_settings

settings = load_settings()
# Gradio's upload cache inside RAG_DATA_DIR (as `rag serve` does), so the app writes nowhere else.
os.environ.setdefault("GRADIO_TEMP_DIR", str((settings.data_dir / "gradio-cache").resolve()))
demo = build_app(settings)

if __name__ == "__main__":
    launch(demo)
