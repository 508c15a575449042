"""The chat app in a browser: `python app.py`, `rag serve`, or a Hugging Face Space.

`demo` is built at import time (what Spaces and `gradio app.py` expect); it launches only when
run as a script. Settings come from RAG_* variables or .env (see README).
"""

from rag.app.web import build_app, launch
from rag.settings import load_settings

demo = build_app(load_settings())

if __name__ == "__main__":
    launch(demo)
