"""Serving the page: `build_app(settings)` makes the Blocks over one Workspace (ingesting
RAG_PRELOAD first); `start`/`launch` serve it with its gradio_client API and the OpenAI-compatible
/v1 API (rag.app.openai_api) on one server, request bodies bounded (rag.app.upload_guard).
The page's CSS and JS are files in assets/, read once here."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr

from rag.app.feedback import export_dir
from rag.app.web.handlers import Handlers
from rag.app.web.layout import layout
from rag.app.workspace import Workspace
from rag.errors import RagError
from rag.settings import Settings, load_settings

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
#: The page's style: the sources panel, the upload table, the hidden controls, a phone's chat height.
CSS = (ASSETS / "app.css").read_text(encoding="utf-8")
#: [n] links in answers open and scroll to their passage; "open page" buttons ask the server for
#: the page image through two hidden components (a textbox holding the passage, a button).
JS = (ASSETS / "app.js").read_text(encoding="utf-8")


def preload(ws: Workspace) -> None:
    """Ingest RAG_PRELOAD into the shared collection (a hosted demo's documents)."""
    from ingest.pipeline import Ingestor

    paths = [p.strip() for p in ws.settings.preload.split(",") if p.strip()]
    report = Ingestor(ws.store(ws.settings.collection), ws.settings).ingest(paths)
    for result in report.files:
        if result.status == "failed":
            log.warning("preload: %s failed: %s", result.path, result.error)
    t = report.totals
    print(f"preloaded {len(report.files)} files into {ws.settings.collection!r}: {t['added']} added, "
          f"{t['updated']} updated, {t['unchanged']} unchanged, {t['failed']} failed", flush=True)


def build_app(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or load_settings()
    ws = Workspace(settings)
    if settings.preload:
        preload(ws)
    handlers = Handlers(ws)
    demo = layout(settings, handlers)
    demo.workspace = ws  # for tests and for launch()'s warm-up
    demo.handlers = handlers
    return demo


def parse_auth(auth: str) -> tuple[str, str] | None:
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise RagError("--auth / RAG_AUTH must be 'user:password'")
    return user, password


def start(demo: gr.Blocks, host: str | None = None, port: int | None = None, share: bool = False, auth: str = "") -> None:
    """Start serving the page, its gradio_client API and the OpenAI-compatible /v1 API
    (rag.app.openai_api) on one server, in the background."""
    from rag.app.net import check_port_free
    from rag.app.openai_api import api_routes

    settings: Settings = demo.workspace.settings
    credentials = parse_auth(auth or settings.auth)
    check_port_free(host, port)
    from starlette.middleware import Middleware

    from rag.app.upload_guard import BodyLimit, UploadBudget

    demo.queue(default_concurrency_limit=4, max_size=settings.queue_max_size)
    app_kwargs = {"routes": api_routes(demo.workspace, credentials)}  # /v1 before Gradio's own routes
    # bodies are bounded before anything parses them; in public mode Gradio's raw upload route draws
    # on the visitor's upload budget too
    app_kwargs["middleware"] = [Middleware(BodyLimit, max_bytes=settings.max_request_kb * 1024)]
    if settings.public:
        app_kwargs["middleware"].append(Middleware(UploadBudget, quotas=demo.workspace.quotas, header=settings.client_ip_header))
    # One client-address rule (rag/quota.py): uvicorn trusts X-Forwarded-For from 127.0.0.1 by default
    # and would rewrite the socket address from it; trust no one unless the owner set it explicitly.
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "")
    try:
        demo.launch(
            app_kwargs=app_kwargs,
            server_name=host,
            server_port=port,
            share=share,
            auth=credentials,
            max_file_size=settings.max_file_bytes,  # bytes: Gradio's "0.5mb" parser takes whole numbers only
            allowed_paths=[str(export_dir(settings.data_dir))],  # chat exports, served once then swept
            prevent_thread_lock=True,
            css=CSS,
            js=JS,
            quiet=True,  # no "To create a public link, set share=True in launch()": our own lines below
        )
    except OSError as exc:  # taken between the check and the launch
        raise RagError(f"cannot listen on port {port or 7860}: {exc}. Choose another with --port N") from None
    print(f"Running on local URL:  {demo.local_url}", flush=True)
    print(f"OpenAI-compatible API at {demo.local_url.rstrip('/')}/v1", flush=True)


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, share: bool = False, auth: str = "") -> None:
    """Serve the app until interrupted; if a share link was asked for and cannot be made, say so and serve locally."""
    start(demo, host, port, share, auth)
    local = demo.local_url
    if share and not demo.share_url:
        print(
            f"Could not create a share link: Gradio's share server is unreachable from this machine. "
            f"Still serving locally at {local}",
            flush=True,
        )
    elif demo.share_url:
        print(f"Share link: {demo.share_url}", flush=True)
    demo.block_thread()
