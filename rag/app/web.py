"""The Gradio chat app. `build_app(settings)` makes the Blocks; app.py and `rag serve` launch it.

Everything the app does lives in rag.app.workspace; this module only lays out the page, turns
events into Workspace calls and renders the results. Answers and sources arrive as data
(rag.schema) and are formatted here, at the edge. Named endpoints (/ask, /upload, /documents)
make the same features available to gradio_client.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import gradio as gr

from ingest.loaders import LOADERS
from rag import policy
from rag.errors import RagError
from rag.markup import inert, inert_line
from rag.quota import client_key
from rag.schema import Answer, FileResult
from rag.settings import Settings, load_settings
from rag.app.workspace import Workspace

log = logging.getLogger(__name__)

STATUS_ICONS = {"added": "✅ added", "updated": "🔄 updated", "unchanged": "⏸ unchanged", "failed": "❌ failed"}


# --- rendering --------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return inert_line(text)  # also escapes "|"; file names and reasons never render as Markdown


def render_results(results: list[FileResult]) -> str:
    if not results:
        return ""
    rows = ["| file | result | chunks | read | seconds | reason |", "|---|---|---|---|---|---|"]
    for r in results:
        read = r.read.describe() if r.read else ""
        note = r.error or (r.read.warning if r.read else None) or ""
        seconds = f"{r.seconds:.1f}" if r.status != "failed" else ""
        rows.append(f"| {_cell(r.path)} | {STATUS_ICONS[r.status]} | {r.chunks or ''} | {_cell(read)} | {seconds} "
                    f"| {_cell(note)} |")
    return "\n".join(rows)


def render_sources(answer: Answer) -> str:
    lines = []
    if answer.rewritten_query:
        lines.append(f"**Searched for:** {inert_line(answer.rewritten_query)}\n")
    if answer.refused:
        lines.append("**Not found in your documents.** No passage was close enough to the question, so no answer was generated.")
        return "\n".join(lines)
    if not answer.citations:
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
        quote = " ".join(c.text.split())
        quote = quote[:600] + ("…" if len(quote) > 600 else "")
        # passages and names are the documents' text: shown as text, never as images or links
        lines.append(f"**[{c.n}] {inert_line(where)}** (similarity {c.score:.2f}){note}\n\n> {inert(quote)}\n")
    return "\n".join(lines)


def _backend_status(settings: Settings) -> str:
    local, remote = policy.describe_backends_for_visitors(settings)  # no URL or path in public mode
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
    # The answer is the model's text and may repeat a document's Markdown: shown as text (markup.py).
    chat = list(chat or []) + [{"role": "user", "content": inert(message)}, {"role": "assistant", "content": ""}]
    yield chat, history, "_Searching your documents…_"
    try:
        chain = ws.chain(session, collection, overrides)
        answer = None
        for piece in chain.stream(message, history):
            if isinstance(piece, str):
                chat[-1]["content"] += inert(piece)
                yield chat, history, None
            else:
                answer = piece
        chat[-1]["content"] = inert(answer.answer)
        yield chat, history + [(message, answer.answer)], render_sources(answer)
    except RagError as exc:
        chat[-1]["content"] = f"⚠️ {inert(policy.redact(str(exc), ws.settings))}"
        yield chat, history, ""
    except Exception as exc:  # a bug: still a message in the chat, the traceback goes to the log
        log.exception("answering failed")
        chat[-1]["content"] = f"⚠️ Something went wrong while answering ({type(exc).__name__}: {exc})."
        yield chat, history, ""


# --- the handlers -----------------------------------------------------------------------------
class Handlers:
    """What each event of the page does, as named methods over one Workspace (the layout below
    only wires them). Gradio passes `request` for the visitor's session."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.settings = ws.settings
        self.public = ws.settings.public

    @staticmethod
    def session(request: gr.Request | None) -> str:
        return getattr(request, "session_hash", None) or "local"

    def client(self, request: gr.Request | None) -> str:
        """The address a request's quota is charged to (see rag/quota.py)."""
        host = getattr(getattr(request, "client", None), "host", None)
        return client_key(host, getattr(request, "headers", None), self.settings.client_ip_header)

    def question_slot(self, request: gr.Request | None):
        return self.ws.quotas.question(self.client(request)) if self.public else contextlib.nullcontext()

    def shown(self, source: str) -> str:
        """In public mode visitors see file names, not the owner's server paths."""
        return Path(source).name if self.public else source

    def doc_rows(self, request: gr.Request, collection: str):
        docs = self.ws.documents(self.session(request), collection)
        rows = [[self.shown(d.source), d.chunks, "yours" if mine else "shared (read-only)"] for d, mine in docs]
        deletable = [d.source for d, mine in docs if mine]
        return rows, gr.update(choices=deletable, value=None)

    # --- page events -------------------------------------------------------------------------
    def respond(self, message, chat, history, collection, k, hybrid, backend, model, temperature, request: gr.Request):
        # Whatever the request carries, only what the owner allows is used (rag/policy.py).
        try:
            settings_now = policy.visitor_overrides(self.settings, k, hybrid, backend, model, temperature)
            with self.question_slot(request):
                turns = chat_turn(self.ws, self.session(request), message, chat, history,
                                  policy.chosen_collection(self.settings, collection), settings_now)
                for chat_now, history_now, sources_md in turns:
                    yield chat_now, history_now, "", sources_md if sources_md is not None else gr.update()
        except RagError as exc:  # a refused model or a quota: said in the chat
            shown_chat = list(chat or []) + [{"role": "user", "content": inert((message or "").strip())},
                                              {"role": "assistant", "content": f"⚠️ {inert(str(exc))}"}]
            yield shown_chat, history, "", ""

    def upload(self, files, collection, request: gr.Request, progress=gr.Progress()):
        paths = [Path(f if isinstance(f, str) else f.name) for f in (files or [])]
        if not paths:
            rows, choices = self.doc_rows(request, collection)
            return "", rows, choices, None

        def report(i: int, n: int, name: str) -> None:
            progress((i, n), desc=f"Ingesting {name}" if name else "Done", unit="files")

        try:
            results = self.ws.upload([(p, p.name) for p in paths], self.session(request), collection, report,
                                     self.client(request))
        finally:
            for p in paths:  # Gradio's cached copy: ours is in RAG_DATA_DIR/uploads now
                _remove_gradio_copy(p)
        rows, choices = self.doc_rows(request, collection)
        return render_results(results), rows, choices, None

    def delete(self, source, collection, request: gr.Request):
        if source:
            removed = self.ws.delete(self.session(request), collection, source)
            gr.Info(f"Deleted {source} ({removed} chunks)." if removed else f"{source} is not yours to delete.")
        return self.doc_rows(request, collection)

    def use_collection(self, name, request: gr.Request):
        name = (policy.chosen_collection(self.settings, name) or "").strip() or self.settings.collection
        try:
            load_settings(collection=name)
        except RagError as exc:
            gr.Warning(str(exc))
            name = self.settings.collection
        if not self.public:
            self.ws.store(name)  # create it if new
        rows, choices = self.doc_rows(request, name)
        return name, [], [], "", rows, choices, gr.update(choices=self.ws.collections(), value=name)

    def refresh(self, collection, request: gr.Request):
        rows, choices = self.doc_rows(request, collection)
        return rows, choices, gr.update(choices=self.ws.collections(), value=collection)

    # --- API-only endpoints ------------------------------------------------------------------
    def ask(self, question: str, request: gr.Request) -> dict:
        """Answer a question from the documents; returns the answer with its citations."""
        try:
            with self.question_slot(request):
                answer = self.ws.chain(self.session(request), None).ask(question).to_json()
            for citation in answer["citations"]:
                citation["source"] = self.shown(citation["source"])
            return answer
        except RagError as exc:
            error = policy.redact(str(exc), self.settings)
            return {"answer": "", "citations": [], "rewritten_query": None, "refused": False, "error": error}

    def documents(self, request: gr.Request) -> list[dict]:
        """The documents this session's questions can read."""
        return [
            {"source": self.shown(d.source), "chunks": d.chunks, "deletable": mine}
            for d, mine in self.ws.documents(self.session(request), None)
        ]


# --- the app ----------------------------------------------------------------------------------
def build_app(settings: Settings | None = None) -> gr.Blocks:
    settings = settings or load_settings()
    ws = Workspace(settings)
    if settings.preload:
        preload(ws)
    demo = layout(settings, Handlers(ws))
    demo.workspace = ws  # for tests and for launch()'s warm-up
    return demo


def layout(settings: Settings, on: Handlers) -> gr.Blocks:
    """The page: chat and sources on the left; documents, collection and settings tabs on the right."""
    public = settings.public
    # Gradio's own cache (uploads not yet handed to us, files it serves at /gradio_api/file=) is
    # emptied of anything older than the visitor TTL, checked every few minutes.
    ttl_s = int(settings.session_ttl_minutes * 60)
    with gr.Blocks(title="groundwork-rag: ask your documents", delete_cache=(max(60, min(ttl_s, 600)), ttl_s)) as demo:
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
                        file_types=sorted(LOADERS),
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
                    backend = gr.Radio(policy.allowed_backends(settings), value=settings.llm, label="LLM backend",
                                       interactive=len(policy.allowed_backends(settings)) > 1)
                    model = gr.Textbox(
                        value=settings.local_model if settings.llm == "local" else settings.openai_model,
                        label="Model (local: gemma3-270m, smollm2 or a GGUF path; openai: model name)",
                        interactive=not public,
                    )
                    temperature = gr.Slider(0.0, 1.5, value=settings.temperature, step=0.05, label="Temperature")
                    gr.Markdown(_backend_status(settings))

        chat_inputs = [question, chatbot, history, collection, k, hybrid, backend, model, temperature]
        chat_outputs = [chatbot, history, question, sources]
        question.submit(on.respond, chat_inputs, chat_outputs, api_visibility="private")
        ask_button.click(on.respond, chat_inputs, chat_outputs, api_visibility="private")
        files.upload(on.upload, [files, collection], [upload_status, docs_table, doc_choice, files], api_name="upload")
        delete_button.click(on.delete, [doc_choice, collection], [docs_table, doc_choice], api_name="delete")
        # the model box follows the backend: never a local model name sent as the OpenAI model
        backend.change(lambda b: settings.local_model if b == "local" else settings.openai_model,
                       backend, model, api_visibility="private")
        use_button.click(
            on.use_collection,
            [collection_box],
            [collection, chatbot, history, sources, docs_table, doc_choice, collection_box],
            api_visibility="private",
        )
        demo.load(on.refresh, [collection], [docs_table, doc_choice, collection_box], api_visibility="private")
        gr.api(on.ask, api_name="ask")
        gr.api(on.documents, api_name="documents")
    return demo


def _remove_gradio_copy(path: Path) -> None:
    """Delete an upload's copy in Gradio's cache (a file in a folder of its own) once ingested;
    files elsewhere (a test's, a caller's) are left alone."""
    from gradio.utils import get_upload_folder

    try:
        if not path.resolve().is_relative_to(Path(get_upload_folder()).resolve()):
            return
        path.unlink(missing_ok=True)
        path.parent.rmdir()  # only if empty
    except OSError:
        pass


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
    demo.queue(default_concurrency_limit=4, max_size=settings.queue_max_size)
    app_kwargs = {}
    if settings.public:  # Gradio's raw upload route draws on the visitor's upload budget too
        from starlette.middleware import Middleware

        from rag.app.upload_guard import UploadBudget

        app_kwargs["middleware"] = [Middleware(UploadBudget, quotas=demo.workspace.quotas, header=settings.client_ip_header)]
    demo.launch(
        app_kwargs=app_kwargs,
        server_name=host,
        server_port=port,
        share=share,
        auth=credentials,
        max_file_size=settings.max_file_bytes,  # bytes: Gradio's "0.5mb" parser takes whole numbers only
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
