"""The Gradio chat app. `build_app(settings)` makes the Blocks; app.py and `rag serve` launch it.

Everything the app does lives in rag.workspace; this module only lays out the page, turns
events into Workspace calls and renders the results. Answers and sources arrive as data
(rag.schema) and are formatted here, at the edge. Named endpoints (/ask, /upload, /documents)
make the same features available to gradio_client.
"""

from __future__ import annotations

import html

import logging
from pathlib import Path

import gradio as gr

from ingest.loaders import SUPPORTED_EXTENSIONS
from rag.errors import RagError
from rag.schema import Answer, FileResult
from rag.settings import Settings, load_settings
from rag.workspace import Workspace

log = logging.getLogger(__name__)

STATUS_ICONS = {"added": "✅ added", "updated": "🔄 updated", "unchanged": "⏸ unchanged", "failed": "❌ failed"}


# --- rendering --------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_results(results: list[FileResult]) -> str:
    if not results:
        return ""
    rows = ["| file | result | chunks | reason |", "|---|---|---|---|"]
    for r in results:
        rows.append(f"| {_cell(r.path)} | {STATUS_ICONS[r.status]} | {r.chunks or ''} | {_cell(r.error or '')} |")
    return "\n".join(rows)


def render_sources(answer: Answer) -> str:
    lines = []
    if answer.rewritten_query:
        lines.append(f"**Searched for:** {answer.rewritten_query}\n")
    if answer.refused:
        lines.append("**Not found in your documents.** No passage was close enough to the question, so no answer was generated.")
        return "\n".join(lines)
    if answer.status == "unsure":
        lines.append("**Not sure.** No answer could be checked against your documents; the closest evidence is highlighted.\n")
    elif not answer.citations:
        lines.append("_The answer cites no passage; treat it with care._")
    for c in answer.citations:
        name = Path(c.source).name or c.source
        where = f"{name}, page {c.page}" if c.page else name
        notes = []
        if not c.supported:
            notes.append("⚠️ weak support: the passage does not back this sentence")
        if c.inferred:
            notes.append("matched by content (the model cited nothing)")
        note = f" — {'; '.join(notes)}" if notes else ""
        lines.append(f"**[{c.n}] {where}** (similarity {c.score:.2f}){note}\n\n> {highlight_quote(c)}\n")
    return "\n".join(lines)


def highlight_quote(c, context: int = 300) -> str:
    """The passage as HTML-escaped text with the quote in <mark>, trimmed to `context` characters
    either side of it."""
    def clean(text: str) -> str:
        return html.escape(" ".join(text.split()), quote=False)

    if not c.quote or c.text[c.quote_start : c.quote_end] != c.quote:
        text = " ".join(c.text.split())
        return clean(text[:600]) + ("…" if len(text) > 600 else "")
    before, after = c.text[: c.quote_start], c.text[c.quote_end :]
    before = "…" + before[-context:] if len(before) > context else before
    after = after[:context] + "…" if len(after) > context else after
    return f"{clean(before)} <mark>{clean(c.quote)}</mark> {clean(after)}".strip()


def _backend_status(settings: Settings) -> str:
    from rag.llm import describe_llm

    local = describe_llm(settings.model_copy(update={"llm": "local"}))
    if settings.openai_api_key or settings.openai_base_url:
        remote = describe_llm(settings.model_copy(update={"llm": "openai"}))
    else:
        remote = "openai: **not configured** (set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server)"
    mode = "public: your uploads are private to your session" if settings.public else "private"
    return f"- {local}\n- {remote}\n- mode: {mode}"


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


# --- one chat turn ----------------------------------------------------------------------------
def chat_turn(ws: Workspace, session: str, message: str, chat: list, history: list, collection: str | None, overrides: dict):
    """One turn as the chat shows it: yields (messages, history, sources markdown or None while
    streaming). Errors end the turn as a readable chat message, never a stack trace."""
    message = (message or "").strip()
    if not message:
        yield chat, history, None
        return
    chat = list(chat or []) + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
    yield chat, history, "_Searching your documents…_"
    try:
        chain = ws.chain(session, collection, overrides)
        answer = None
        for piece in chain.stream(message, history):
            if isinstance(piece, str):
                chat[-1]["content"] += piece
                yield chat, history, None
            else:
                answer = piece
        chat[-1]["content"] = answer.answer
        yield chat, history + [(message, answer.answer)], render_sources(answer)
    except RagError as exc:
        chat[-1]["content"] = f"⚠️ {exc}"
        yield chat, history, ""
    except Exception as exc:  # a bug: still a message in the chat, the traceback goes to the log
        log.exception("answering failed")
        chat[-1]["content"] = f"⚠️ Something went wrong while answering ({type(exc).__name__}: {exc})."
        yield chat, history, ""


# --- the app ----------------------------------------------------------------------------------
def build_app(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or load_settings()
    ws = Workspace(settings)
    public = settings.public
    if settings.preload:
        preload(ws)

    def session(request: gr.Request | None) -> str:
        return getattr(request, "session_hash", None) or "local"

    def overrides(k, hybrid, backend, model, temperature) -> dict:
        out = {"k": int(k), "hybrid": bool(hybrid), "llm": backend, "temperature": float(temperature)}
        if model and model.strip():
            out["local_model" if backend == "local" else "openai_model"] = model.strip()
        return out

    def shown(source: str) -> str:
        """In public mode visitors see file names, not the owner's server paths."""
        return Path(source).name if public else source

    def doc_rows(request: gr.Request, collection: str):
        docs = ws.documents(session(request), collection)
        rows = [[shown(d.source), d.chunks, "yours" if mine else "shared (read-only)"] for d, mine in docs]
        deletable = [d.source for d, mine in docs if mine]
        return rows, gr.update(choices=deletable, value=None)

    # --- handlers ---------------------------------------------------------------------------
    def respond(message, chat, history, collection, k, hybrid, backend, model, temperature, request: gr.Request):
        settings_now = overrides(k, hybrid, backend, model, temperature)
        for chat_now, history_now, sources_md in chat_turn(ws, session(request), message, chat, history, collection, settings_now):
            yield chat_now, history_now, "", sources_md if sources_md is not None else gr.update()

    def upload(files, collection, request: gr.Request, progress=gr.Progress()):
        paths = [Path(f if isinstance(f, str) else f.name) for f in (files or [])]
        if not paths:
            rows, choices = doc_rows(request, collection)
            return "", rows, choices, None

        def report(i: int, n: int, name: str) -> None:
            progress((i, n), desc=f"Ingesting {name}" if name else "Done", unit="files")

        results = ws.upload([(p, p.name) for p in paths], session(request), collection, report)
        rows, choices = doc_rows(request, collection)
        return render_results(results), rows, choices, None

    def delete(source, collection, request: gr.Request):
        if source:
            removed = ws.delete(session(request), collection, source)
            gr.Info(f"Deleted {source} ({removed} chunks)." if removed else f"{source} is not yours to delete.")
        return doc_rows(request, collection)

    def use_collection(name, request: gr.Request):
        name = (name or "").strip() or settings.collection
        try:
            load_settings(collection=name)
        except RagError as exc:
            gr.Warning(str(exc))
            name = settings.collection
        if not public:
            ws.store(name)  # create it if new
        rows, choices = doc_rows(request, name)
        return name, [], [], "", rows, choices, gr.update(choices=ws.collections(), value=name)

    def refresh(collection, request: gr.Request):
        rows, choices = doc_rows(request, collection)
        return rows, choices, gr.update(choices=ws.collections(), value=collection)

    # --- API-only endpoints -------------------------------------------------------------------
    def ask(question: str, request: gr.Request) -> dict:
        """Answer a question from the documents; returns the answer with its citations."""
        try:
            answer = ws.chain(session(request), None).ask(question).to_json()
            for citation in answer["citations"]:
                citation["source"] = shown(citation["source"])
            return answer
        except RagError as exc:
            return {"answer": "", "citations": [], "rewritten_query": None, "refused": False, "error": str(exc)}

    def documents(request: gr.Request) -> list[dict]:
        """The documents this session's questions can read."""
        return [
            {"source": shown(d.source), "chunks": d.chunks, "deletable": mine}
            for d, mine in ws.documents(session(request), None)
        ]

    # --- layout -------------------------------------------------------------------------------
    with gr.Blocks(title="groundwork-rag: ask your documents") as demo:
        history = gr.State([])
        collection = gr.State(settings.collection)
        gr.Markdown(
            "## Ask your documents\nDrop files on the right, ask on the left. Every answer comes "
            "with the passages it cites; if your documents do not contain the answer, it says so."
        )
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=460, elem_id="chat")
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question about your documents…",
                        show_label=False,
                        scale=5,
                        elem_id="question",
                    )
                    ask_button = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                gr.Markdown("### Sources")
                sources = gr.Markdown(elem_id="sources")
            with gr.Column(scale=2):
                with gr.Tab("Documents"):
                    files = gr.File(
                        file_count="multiple",
                        file_types=sorted(SUPPORTED_EXTENSIONS),
                        label=f"Drop documents here (up to {settings.max_upload_files} files, "
                        f"{settings.max_file_mb:g} MB each)",
                        elem_id="upload",
                    )
                    upload_status = gr.Markdown(elem_id="upload-status")
                    docs_table = gr.Dataframe(
                        headers=["document", "chunks", "access"],
                        datatype=["str", "number", "str"],
                        interactive=False,
                        elem_id="documents",
                    )
                    with gr.Row():
                        doc_choice = gr.Dropdown(label="Delete a document", choices=[], scale=3)
                        delete_button = gr.Button("Delete", variant="stop", scale=1)
                with gr.Tab("Collection"):
                    collection_box = gr.Dropdown(
                        choices=[settings.collection],
                        value=settings.collection,
                        allow_custom_value=True,
                        label="Collection to chat with (type a new name to create one)",
                        interactive=not public,
                    )
                    use_button = gr.Button("Use this collection", interactive=not public)
                    if public:
                        gr.Markdown("Public demo: your uploads go to a private collection of your session, deleted after "
                                    f"{settings.session_ttl_minutes:g} idle minutes.")
                with gr.Tab("Settings"):
                    k = gr.Slider(1, 12, value=settings.k, step=1, label="Passages retrieved (k)")
                    hybrid = gr.Checkbox(value=settings.hybrid, label="Keyword fusion (BM25 + embeddings)")
                    backend = gr.Radio(["local", "openai"], value=settings.llm, label="LLM backend")
                    model = gr.Textbox(
                        value=settings.local_model if settings.llm == "local" else settings.openai_model,
                        label="Model (local: smollm2, gemma3-270m or a GGUF path; openai: model name)",
                        interactive=not public,
                    )
                    temperature = gr.Slider(0.0, 1.5, value=settings.temperature, step=0.05, label="Temperature")
                    gr.Markdown(_backend_status(settings))

        chat_inputs = [question, chatbot, history, collection, k, hybrid, backend, model, temperature]
        chat_outputs = [chatbot, history, question, sources]
        question.submit(respond, chat_inputs, chat_outputs, api_visibility="private")
        ask_button.click(respond, chat_inputs, chat_outputs, api_visibility="private")
        files.upload(upload, [files, collection], [upload_status, docs_table, doc_choice, files], api_name="upload")
        delete_button.click(delete, [doc_choice, collection], [docs_table, doc_choice], api_name="delete")
        use_button.click(
            use_collection,
            [collection_box],
            [collection, chatbot, history, sources, docs_table, doc_choice, collection_box],
            api_visibility="private",
        )
        demo.load(refresh, [collection], [docs_table, doc_choice, collection_box], api_visibility="private")
        gr.api(ask, api_name="ask")
        gr.api(documents, api_name="documents")
    demo.workspace = ws  # for tests and for launch()'s warm-up
    return demo


def parse_auth(auth: str) -> tuple[str, str] | None:
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise RagError("--auth / RAG_AUTH must be 'user:password'")
    return user, password


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, share: bool = False, auth: str = "") -> None:
    """Serve the app; if a share link was asked for and cannot be made, say so and serve locally."""
    settings: Settings = demo.workspace.settings
    credentials = parse_auth(auth or settings.auth)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=credentials,
        max_file_size=f"{settings.max_file_mb:g}mb",
        prevent_thread_lock=True,
    )
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
