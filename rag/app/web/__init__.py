"""The Gradio chat app. `build_app(settings)` makes the Blocks; app.py and `rag serve` launch it.

Everything the app does lives in rag.app.workspace; this package only lays out the page, turns
events into Workspace calls and renders the results. Answers and sources arrive as data
(rag.schema) and are formatted here, at the edge. Named endpoints (/ask, /upload, /documents)
make the same features available to gradio_client.

    layout.py     the Blocks: components and their wiring
    handlers.py   chat_turn (one chat turn) and Handlers (what each event does)
    renderers.py  the upload results table, the documents table's cells, the backend status
    server.py     build_app, start/launch: auth, the /v1 mount, the request-body limits
    assets/       app.css and app.js, read by server.py
"""

from rag.app.web.handlers import Handlers, chat_turn, message_text
from rag.app.web.layout import layout
from rag.app.web.renderers import STATUS_WORDS, doc_headers, render_results
from rag.app.web.server import CSS, JS, build_app, launch, parse_auth, preload, start

__all__ = ["CSS", "JS", "STATUS_WORDS", "Handlers", "build_app", "chat_turn", "doc_headers", "launch", "layout",
           "message_text", "parse_auth", "preload", "render_results", "start"]
