"""The Gradio chat app. `build_app(settings)` makes the Blocks; app.py and `rag serve` launch it.

Everything the app does lives in rag.app.workspace; this module only lays out the page, turns
events into Workspace calls and renders the results. Answers and sources arrive as data
(rag.schema) and are formatted here, at the edge. Named endpoints (/ask, /upload, /documents)
make the same features available to gradio_client.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import gradio as gr

from ingest.formats import LOADERS
from rag.app import policy
from rag.errors import RagError
from rag.app.markup import inert, inert_line
from rag.app.quota import client_key
from rag.schema import Answer, FileResult
from rag.settings import Settings, load_settings
from rag.app.feedback import FeedbackLog, chat_json, chat_markdown, export_dir, make_turn, write_export
from rag.app.sources_view import link_markers, passages_of, render_panel, source_name
from rag.app.workspace import Workspace

log = logging.getLogger(__name__)

#: Status in words: emoji render as empty boxes in Debian's Chromium.
STATUS_WORDS = {"added": "added", "updated": "updated", "unchanged": "unchanged", "failed": "FAILED"}


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
        rows.append(f"| {_cell(r.path)} | {STATUS_WORDS[r.status]} | {r.chunks or ''} | {_cell(read)} | {seconds} "
                    f"| {_cell(note)} |")
    return "\n".join(rows)


def render_sources(answer: Answer) -> str:
    lines = []
    if answer.rewritten_query:
        lines.append(f"**Searched for:** {inert_line(answer.rewritten_query)}\n")
    if answer.refused:
        lines.append("**Not found in your documents.** No passage was close enough to the question, so no answer was generated.")
        return "\n".join(lines)
    if answer.status == "unsure":
        lines.append("**Not sure.** No answer could be checked against your documents; the closest evidence is quoted.\n")
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
        quote = " ".join(c.text.split())
        quote = quote[:600] + ("…" if len(quote) > 600 else "")
        # passages and names are the documents' text: shown as text, never as images or links
        said = f"\n\nQuote: “{inert(' '.join(c.quote.split()))}”" if getattr(c, "quote", None) else ""
        lines.append(f"**[{c.n}] {inert_line(where)}** (similarity {c.score:.2f}){note}{said}\n\n> {inert(quote)}\n")
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
def chat_turn(ws: Workspace, session: str, message: str, chat: list, history: list, collection: str | None, overrides: dict,
              on_answer=None):
    """One turn as the chat shows it: yields (messages, history, sources markdown or None while
    streaming). Errors end the turn as a readable chat message, never a stack trace. `on_answer`
    is called with the final Answer before the last yield."""
    message = (message or "").strip()
    if not message:
        yield chat, history, None
        return
    # The answer is the model's text and may repeat a document's Markdown: shown as text (markup.py).
    chat = list(chat or []) + [{"role": "user", "content": inert(message)}, {"role": "assistant", "content": ""}]
    yield chat, history, "_Searching your documents…_"
    try:
        reply = ws.chain(session, collection, overrides).reply(message, history)
        for piece in reply:
            # the whole text so far, escaped as one: a URL split across pieces ("http:" then
            # "//host") is only seen, and made inert, once its pieces are together
            chat[-1]["content"] = inert(reply.streamed)
            yield chat, history, None
        answer = reply.answer()
        chat[-1]["content"] = inert(answer.answer)
        if on_answer:
            on_answer(answer)
        yield chat, history + [(message, answer.answer)], render_sources(answer)
    except RagError as exc:
        chat[-1]["content"] = f"⚠️ {inert(policy.redact(str(exc), ws.settings))}"
        yield chat, history, ""
    except Exception as exc:  # a bug: still a message in the chat, the traceback goes to the log
        log.exception("answering failed")
        chat[-1]["content"] = f"⚠️ Something went wrong while answering ({type(exc).__name__}: {exc})."
        yield chat, history, ""


def message_text(message: dict) -> str:
    """A chat message's text: Gradio sends content back as a string or a list of {"type": "text"} blocks."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return content if isinstance(content, str) else ""


# --- the handlers -----------------------------------------------------------------------------
class Handlers:
    """What each event of the page does, as named methods over one Workspace (the layout below
    only wires them). Gradio passes `request` for the visitor's session."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.settings = ws.settings
        self.public = ws.settings.public
        self.feedback_log = FeedbackLog(ws.settings.data_dir, int(ws.settings.feedback_max_mb * 2**20))
        self._busy: set[str] = set()  # sessions with an answer streaming
        from rag.app.page_image import PageCache

        self.pages = PageCache()  # "open page" renders, per (file hash, page, quote)

    @staticmethod
    def session(request: gr.Request | None) -> str:
        return getattr(request, "session_hash", None) or "local"

    def client(self, request: gr.Request | None) -> str:
        """The address a request's quota is charged to (see rag/quota.py)."""
        host = getattr(getattr(request, "client", None), "host", None)
        return client_key(host, getattr(request, "headers", None), self.settings.client_ip_header)

    def question_slot(self, request: gr.Request | None):
        return self.ws.quotas.question(self.client(request)) if self.public else contextlib.nullcontext()

    def spend(self, request: gr.Request | None, kind: str, what: str) -> None:
        """Public mode: one unit of an hourly budget (rag/quota.py), or QuotaExceeded."""
        if self.public:
            setting = f"visitor_{kind}_per_hour"
            self.ws.quotas.charge(self.client(request), kind, 1, getattr(self.settings, setting), what,
                                  f"RAG_{setting.upper()}")

    def shown(self, source: str) -> str:
        """In public mode visitors see file names, not the owner's server paths."""
        return Path(source).name if self.public else source

    def doc_rows(self, request: gr.Request, collection: str):
        docs = self.ws.documents(self.session(request), collection)
        rows = [self._doc_row(d, mine) for d, mine in docs]
        deletable = [d.source for d, mine in docs if mine]
        return rows, gr.update(choices=deletable, value=None)

    def _doc_row(self, doc, mine: bool) -> list:
        """One naming rule: the file name (the path is in the read column's tooltip-free world only
        for the owner, via `rag docs list`); what reading it found, as `rag docs list` says it
        (pages, OCR'd pages, pages without text); in public mode also whose it is."""
        access = ["yours" if mine else "shared (read-only)"] if self.public else []
        return [source_name(doc.source), doc.chunks, _read_cell(doc), *access, "delete" if mine else ""]

    def doc_sources(self, request: gr.Request, collection: str) -> list[str]:
        """The stored source of each table row, in order (what a row's delete removes)."""
        return [d.source for d, _ in self.ws.documents(self.session(request), collection)]

    def starters(self, request: gr.Request, collection: str) -> list[str]:
        from rag.app.starters import example_questions

        chunks = []
        for name in dict.fromkeys(self.ws.readable(self.session(request), collection)):
            store = self.ws.store(name, create=False)
            if store is not None:
                chunks.extend(store.head(200))
        return example_questions(chunks)

    def empty_state(self, request: gr.Request, collection: str):
        """The empty chat: what is loaded, and three example questions drawn from it."""
        docs = self.ws.documents(self.session(request), collection)
        if not docs:
            text = ("**No documents yet.** Add files under *Documents*; then ask about them here. "
                    "Every answer lists the passages it found, and says so when your documents do not hold the answer.")
            return gr.update(placeholder=text, examples=[])  # None would keep the last collection's examples
        names = ", ".join(inert_line(source_name(d.source)) for d, _ in docs[:6]) + (f" and {len(docs) - 6} more" if len(docs) > 6 else "")
        text = f"**{len(docs)} document{'s' if len(docs) != 1 else ''} loaded:** {names}.\n\nAsk anything about them, or try:"
        examples = [{"text": q} for q in self.starters(request, collection)]
        return gr.update(placeholder=text, examples=examples)

    # --- page events -------------------------------------------------------------------------
    def respond(self, message, chat, history, turns, collection, k, hybrid, backend, model, temperature,
                request: gr.Request):
        """Yields (chat, history, question box, sources panel, turns); runs after `gate` let it."""
        session = self.session(request)
        question = (message or "").strip()
        too_long = policy.question_too_long(question, self.settings)
        if too_long:  # refused before any search, quota or state holds it
            self._busy.discard(session)
            shown = inert(question[:200]) + "…"
            yield (list(chat or []) + [{"role": "user", "content": shown},
                                       {"role": "assistant", "content": f"⚠️ {too_long}"}], history, "", gr.update(), turns)
            return
        got: list[Answer] = []
        # The box is emptied once, as the question is taken; later updates leave it alone, so what
        # the visitor types meanwhile (refused by `gate`, kept to send) is not wiped.
        box = ""
        self._busy.add(session)  # gate() did already; an API caller may not have
        try:
            # Whatever the request carries, only what the owner allows is used (rag/policy.py).
            settings_now = policy.visitor_overrides(self.settings, k, hybrid, backend, model, temperature)
            chosen = policy.chosen_collection(self.settings, collection)
            used = settings_now.get("llm", self.settings.llm)
            record = {**settings_now, "collection": chosen or self.settings.collection,
                      "model": settings_now.get("local_model" if used == "local" else "openai_model")}
            with self.question_slot(request):
                first = True
                for chat_now, history_now, _ in chat_turn(self.ws, session, message, chat, history, chosen,
                                                          settings_now, on_answer=got.append):
                    if got:
                        turns = turns + [self._turn(question, got[0], record)]
                        numbers = {p["n"] for p in turns[-1]["passages"]}
                        chat_now[-1]["content"] = link_markers(inert(got[0].answer), len(turns) - 1, numbers)
                        yield chat_now, history_now, box, render_panel(turns), turns
                    elif first and question:
                        yield (chat_now, history_now, box,
                               '<p class="src-searching">Searching your documents…</p>' + render_panel(turns), turns)
                    else:
                        yield chat_now, history_now, box, gr.update(), turns
                    first, box = False, gr.update()
        except RagError as exc:  # a refused model or a quota: said in the chat
            shown_chat = list(chat or []) + [{"role": "user", "content": inert(question)},
                                              {"role": "assistant", "content": f"⚠️ {inert(policy.redact(str(exc), self.settings))}"}]
            yield shown_chat, history, box, gr.update(), turns
        finally:
            self._busy.discard(session)

    def gate(self, request: gr.Request) -> None:
        """Before each question: refuse it visibly (an error toast; the question stays in the box)
        while this visitor's previous answer still streams. Runs outside the queue, at once."""
        session = self.session(request)
        if session in self._busy:
            raise gr.Error("Still answering your previous question: wait for it, or press Stop. "
                           "Your new question stays in the box.", title="One question at a time")
        self._busy.add(session)

    def _turn(self, question: str, answer: Answer, record: dict) -> dict:
        data = answer.to_json()
        for c in data["citations"]:
            c["source"] = self.shown(c["source"])
        turn = make_turn(question, data, record)
        turn["passages"] = passages_of(answer)  # server-side state: real sources, for "open page"
        return turn

    def stop(self, chat, request: gr.Request):
        self._busy.discard(self.session(request))
        chat = list(chat or [])
        if chat and chat[-1].get("role") == "assistant" and message_text(chat[-1]).strip():
            chat[-1] = {"role": "assistant", "content": message_text(chat[-1]) + " _(stopped)_"}
        elif chat and chat[-1].get("role") in ("user", "assistant"):
            if chat[-1].get("role") == "assistant":
                chat.pop()
            chat.append({"role": "assistant", "content": "_(stopped before the answer began)_"})
        gr.Info("Stopped. Ask again when you are ready.")
        return chat

    def new_chat(self, collection, request: gr.Request):
        self._busy.discard(self.session(request))
        return [], [], [], render_panel([]), "", gr.update(visible=False), self.empty_state(request, collection)

    def pick_example(self, event: gr.SelectData):
        value = event.value
        return value.get("text", "") if isinstance(value, dict) else str(value or "")

    def feedback(self, chat, turns, event: gr.LikeData, request: gr.Request):
        """Thumbs on an answer: the turn (question, answer, citations, settings) appended to
        DATA_DIR/feedback.jsonl."""
        liked = event.liked
        if liked not in (True, False):
            return  # a thumb taken back
        index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        chat = chat or []
        asked = message_text(chat[index - 1]) if 0 < index < len(chat) else None
        turn = next((t for t in reversed(turns or []) if t["question"] == (asked or "").strip()), None)
        if turn is None:
            gr.Warning("That message is not an answer from the documents; nothing recorded.")
            return
        try:
            self.spend(request, "feedback", "rating")
            self.feedback_log.record("up" if liked else "down", {k: v for k, v in turn.items() if k != "passages"},
                                     self.session(request))
        except RagError as exc:  # over the hourly budget, or the file is full
            gr.Warning(str(exc))
            return
        gr.Info("Thanks: your rating was saved with the question, answer and sources.")

    def export_md(self, turns, request: gr.Request):
        return self.export(turns, "md", request)

    def export_json(self, turns, request: gr.Request):
        return self.export(turns, "json", request)

    def export(self, turns, kind: str, request: gr.Request | None = None):
        """The chat as a file in DATA_DIR/exports (size-capped, swept after the visitor TTL; one
        unit of the hourly export budget in public mode)."""
        if not turns:
            gr.Warning("Nothing to export yet: ask a question first.")
            return gr.update(value=None, visible=False)
        plain = [{k: v for k, v in t.items() if k != "passages"} for t in turns]
        try:
            self.spend(request, "exports", "export")
            path = write_export(export_dir(self.settings.data_dir), chat_markdown(plain) if kind == "md" else chat_json(plain),
                                kind, int(self.settings.max_export_mb * 2**20), self.settings.session_ttl_minutes * 60)
        except RagError as exc:
            gr.Warning(str(exc))
            return gr.update(value=None, visible=False)
        return gr.update(value=str(path), visible=True)

    def open_page(self, ref, turns, collection, request: gr.Request):
        """The original PDF page of passage `ref` ("turn:n") as an image with its quote marked.
        Only passages retrieved for this visitor (their own turns state) can be opened, and only
        from collections their questions may read."""
        from rag.app.page_image import pick_quote

        hidden = gr.update(visible=False), gr.update(visible=False)
        try:
            t, n = (int(x) for x in str(ref).split(":"))
            passage = next(p for p in turns[t]["passages"] if p["n"] == n)
        except (ValueError, IndexError, StopIteration, TypeError, KeyError):
            return hidden
        if not passage.get("page"):
            gr.Warning(f"{passage['name']} has no pages to show.")
            return hidden
        path = self.original_file(request, collection, passage)
        if path is None:
            gr.Warning(f"The original of {passage['name']} is no longer available on this server (deleted, or "
                       f"removed after {self.settings.session_ttl_minutes:g} idle minutes).")
            return hidden
        try:
            self.spend(request, "page_renders", "opening a page")
            page = self.pages.render(path, int(passage["page"]), pick_quote(passage["text"], passage.get("quote")))
        except RagError as exc:
            gr.Warning(str(exc))
            return hidden
        except Exception as exc:  # a PDF pdfium cannot open: say so, keep the chat going
            gr.Warning(f"Could not show {passage['name']}, page {passage['page']}: {exc}")
            return gr.update(visible=False), gr.update(visible=False)
        label = f"{passage['where']} of {page.pages}" + ("" if page.found else " (the quote could not be marked on this page)")
        return gr.update(visible=True), gr.update(value=page.image, label=label)

    def original_file(self, request: gr.Request, collection: str, passage: dict) -> Path | None:
        """The file a passage came from, only while the store still holds that passage's version:
        the visitor's own stored upload (public mode: nothing else); in private mode also an upload
        of the chosen collection, or the absolute path a document was ingested from. Never a path
        relative to the server's working directory. None: deleted, swept, replaced or not ours."""
        session, source = self.session(request), str(passage.get("source", ""))
        mine = self.ws.writable(session, collection)
        for name in dict.fromkeys(self.ws.readable(session, collection)):
            if self.public and name != mine:
                continue
            store = self.ws.store(name, create=False)
            if store is None or not _still_stored(store, str(passage.get("chunk_id", ""))):
                continue
            folder = (self.settings.data_dir / "uploads" / name).resolve()
            candidate = (folder / source_name(source)).resolve()
            if source == source_name(source) and candidate.parent == folder and candidate.is_file():
                return candidate
            path = Path(source)
            if not self.public and path.is_absolute() and path.is_file():
                return path
        return None

    def ask_delete(self, sources, event: gr.SelectData, request: gr.Request):
        """A click on a row's "delete" cell asks for confirmation; other cells do nothing."""
        row, col = event.index if isinstance(event.index, (list, tuple)) else (event.index, 0)
        if col != len(doc_headers(self.public)) - 1 or event.value != "delete" or not (0 <= row < len(sources or [])):
            return gr.update(), gr.update(), None
        source = sources[row]
        return (gr.update(visible=True),
                gr.update(value=f"Delete **{source_name(source)}** from the collection? Its passages can no longer be found."),
                source)

    def confirm_delete(self, source, collection, request: gr.Request):
        if source:
            removed = self.ws.delete(self.session(request), collection, source)
            if removed:
                gr.Info(f"Deleted {source_name(source)} ({removed} passages).")
            else:
                gr.Warning(f"{source_name(source)} is not yours to delete.")
        rows, choices = self.doc_rows(request, collection)
        return gr.update(visible=False), None, rows, choices, self.doc_sources(request, collection), \
            self.empty_state(request, collection)

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
        gr.Info(f"Now asking collection '{name}' ({len(rows)} document{'s' if len(rows) != 1 else ''}). "
                "The conversation was cleared: a new chat started.")
        return name, [], [], "", rows, choices, gr.update(choices=self.ws.collections(), value=name)

    def after_documents_change(self, collection, request: gr.Request):
        """What follows an upload, delete or switch: the row sources and the empty chat's text."""
        return self.doc_sources(request, collection), self.empty_state(request, collection)

    def refresh(self, collection, request: gr.Request):
        rows, choices = self.doc_rows(request, collection)
        return rows, choices, gr.update(choices=self.ws.collections(), value=collection)

    # --- API-only endpoints ------------------------------------------------------------------
    def ask(self, question: str, request: gr.Request) -> dict:
        """Answer a question from the documents; returns the answer with its citations."""
        try:
            too_long = policy.question_too_long(str(question or ""), self.settings)
            if too_long:
                raise RagError(too_long)
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
            {"source": self.shown(d.source), "chunks": d.chunks, "deletable": mine, "read": _read_cell(d)}
            for d, mine in self.ws.documents(self.session(request), None)
        ]


def _still_stored(store, chunk_id: str) -> bool:
    """Does the store still hold the document version a chunk id names (`<doc_id>-<hash12>-<i>`)?"""
    parts = chunk_id.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return False
    doc_id, version, _ = parts
    return any(v.doc_hash.startswith(version) for v in store.versions(doc_id))


def doc_headers(public: bool) -> list[str]:
    """The documents table's columns; the last one holds each deletable row's "delete"."""
    return ["document", "chunks", "read", *(["access"] if public else []), ""]


def _read_cell(doc) -> str:
    """What reading the document found, with its warning (e.g. the OCR page limit was reached)."""
    if doc.read is None:
        return ""
    return doc.read.describe() + (f"; {doc.read.warning}" if doc.read.warning else "")


# --- the app ----------------------------------------------------------------------------------
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


CSS = """
#sources-list details { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 4px 8px; margin-bottom: 6px; }
#sources-list summary { cursor: pointer; }
.src { border-left: 4px solid var(--border-color-primary); padding: 2px 8px; margin: 6px 0; }
.src.cited { border-left-color: var(--color-accent); }
.src.flash { background: var(--color-accent-soft); }
.src-label { color: var(--body-text-color-subdued); font-size: 0.9em; }
.src-text mark { background: #ffe066; color: inherit; padding: 0 1px; }
.open-page { margin-left: 6px; font-size: 0.85em; text-decoration: underline; cursor: pointer; }
#upload-status table { display: block; overflow-x: auto; }
#upload-status th, #upload-status td { word-break: normal; overflow-wrap: normal; white-space: nowrap; }
#hidden-controls { display: none !important; }
@media (max-width: 700px) { #chat { height: 60vh !important; } }
"""

#: [n] links in answers open and scroll to their passage; "open page" buttons ask the server for
#: the page image through two hidden components (a textbox holding the passage, a button).
JS = """
() => {
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href^="#src-"]');
    if (a) {
      e.preventDefault();
      const el = document.getElementById(a.getAttribute('href').slice(1));
      if (el) {
        const d = el.closest('details'); if (d) d.open = true;
        el.scrollIntoView({behavior: 'smooth', block: 'center'});
        el.classList.add('flash'); setTimeout(() => el.classList.remove('flash'), 1500);
      }
      return;
    }
    const b = e.target.closest('button.open-page');
    if (b) {
      const box = document.querySelector('#open-ref textarea');
      box.value = b.dataset.ref; box.dispatchEvent(new Event('input', {bubbles: true}));
      setTimeout(() => document.getElementById('open-go').click(), 50);
    }
  }, true);
}
"""


def layout(settings: Settings, on: Handlers) -> gr.Blocks:
    """The page: chat with its sources; documents, collection and settings tabs beside it (below on a phone)."""
    public = settings.public
    # Gradio's own cache (uploads not yet handed to us, files it serves at /gradio_api/file=) is
    # emptied of anything older than the visitor TTL, checked every few minutes.
    ttl_s = int(settings.session_ttl_minutes * 60)
    with gr.Blocks(title="groundwork-rag: ask your documents", delete_cache=(max(60, min(ttl_s, 600)), ttl_s)) as demo:
        history = gr.State([])
        turns = gr.State([])  # one dict per answer: question, answer, citations, settings, passages
        collection = gr.State(settings.collection)
        doc_sources = gr.State([])  # the stored source behind each documents-table row
        pending_delete = gr.State(None)
        gr.Markdown(
            "## Ask your documents\nAdd files under **Documents** and ask about them. Every answer lists the "
            "passages it found, cited ones first; if your documents do not hold the answer, it says so."
        )
        with gr.Row():
            with gr.Column(scale=3, min_width=340):
                chatbot = gr.Chatbot(label="Chat", height=460, elem_id="chat", placeholder="Loading your documents…")
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question about your documents…",
                        show_label=False,
                        scale=5,
                        min_width=180,
                        elem_id="question",
                    )
                    ask_button = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="ask")
                    stop_button = gr.Button("Stop", variant="stop", scale=1, min_width=70, elem_id="stop")
                with gr.Row():
                    new_button = gr.Button("New chat", size="sm", elem_id="new-chat")
                    export_md = gr.Button("Export Markdown", size="sm", elem_id="export-md")
                    export_json = gr.Button("Export JSON", size="sm", elem_id="export-json")
                export_file = gr.File(label="Exported chat", visible=False, elem_id="export-file")
                with gr.Group(visible=False, elem_id="page-view") as page_box:
                    page_image = gr.Image(label="Original page", type="pil", interactive=False, height=560, elem_id="page-image")
                    close_page = gr.Button("Close page", size="sm", elem_id="close-page")
                gr.Markdown("### Sources")
                sources = gr.HTML(render_panel([]), elem_id="sources")
            with gr.Column(scale=2, min_width=300):
                with gr.Tab("Documents"):
                    files = gr.File(
                        file_count="multiple",
                        file_types=sorted(LOADERS),
                        label=f"Add documents (up to {settings.max_upload_files} files, "
                        f"{settings.max_file_mb:g} MB each)",
                        elem_id="upload",
                    )
                    upload_status = gr.Markdown(elem_id="upload-status")
                    docs_table = gr.Dataframe(
                        headers=doc_headers(public),
                        datatype=["str", "number", *["str"] * (len(doc_headers(public)) - 2)],
                        interactive=False,
                        wrap=True,
                        elem_id="documents",
                    )
                    with gr.Group(visible=False, elem_id="confirm-box") as confirm_box:
                        confirm_text = gr.Markdown(elem_id="confirm-text")
                        with gr.Row():
                            confirm_button = gr.Button("Delete", variant="stop", elem_id="confirm-delete")
                            cancel_button = gr.Button("Cancel", elem_id="cancel-delete")
                    doc_choice = gr.Dropdown(label="Delete a document", choices=[], visible=False)  # for the /delete API
                    delete_button = gr.Button("Delete", visible=False)
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
        with gr.Row(elem_id="hidden-controls"):
            open_ref = gr.Textbox(elem_id="open-ref", show_label=False)
            open_go = gr.Button("open", elem_id="open-go")

        chat_inputs = [question, chatbot, history, turns, collection, k, hybrid, backend, model, temperature]
        chat_outputs = [chatbot, history, question, sources, turns]
        gate = dict(fn=on.gate, inputs=None, outputs=None, concurrency_limit=None, trigger_mode="multiple",
                    api_visibility="private")
        answer = dict(fn=on.respond, inputs=chat_inputs, outputs=chat_outputs, api_visibility="private")
        submitted = question.submit(**gate).success(**answer)
        clicked = ask_button.click(**gate).success(**answer)
        picked = chatbot.example_select(on.pick_example, None, question, api_visibility="private")
        from_example = picked.then(on.gate, None, None, concurrency_limit=None, api_visibility="private").success(**answer)
        stop_button.click(on.stop, [chatbot], [chatbot], cancels=[submitted, clicked, from_example],
                          api_visibility="private")
        new_button.click(on.new_chat, [collection],
                         [chatbot, history, turns, sources, question, page_box, chatbot],
                         cancels=[submitted, clicked, from_example], api_visibility="private")
        chatbot.like(on.feedback, [chatbot, turns], None, api_visibility="private")
        export_md.click(on.export_md, [turns], [export_file], api_visibility="private")
        export_json.click(on.export_json, [turns], [export_file], api_visibility="private")
        open_go.click(on.open_page, [open_ref, turns, collection], [page_box, page_image], api_visibility="private")
        close_page.click(lambda: gr.update(visible=False), None, [page_box], api_visibility="private")

        after_docs = dict(fn=on.after_documents_change, inputs=[collection], outputs=[doc_sources, chatbot],
                          api_visibility="private")
        files.upload(on.upload, [files, collection], [upload_status, docs_table, doc_choice, files],
                     api_name="upload").then(**after_docs)
        delete_button.click(on.delete, [doc_choice, collection], [docs_table, doc_choice], api_name="delete").then(**after_docs)
        docs_table.select(on.ask_delete, [doc_sources], [confirm_box, confirm_text, pending_delete],
                          api_visibility="private")
        confirm_button.click(on.confirm_delete, [pending_delete, collection],
                             [confirm_box, pending_delete, docs_table, doc_choice, doc_sources, chatbot],
                             api_visibility="private")
        cancel_button.click(lambda: (gr.update(visible=False), None), None, [confirm_box, pending_delete],
                            api_visibility="private")
        # the model box follows the backend: never a local model name sent as the OpenAI model
        backend.change(lambda b: settings.local_model if b == "local" else settings.openai_model,
                       backend, model, api_visibility="private")
        use_button.click(
            on.use_collection,
            [collection_box],
            [collection, chatbot, history, sources, docs_table, doc_choice, collection_box],
            api_visibility="private",
        ).then(lambda: ([], render_panel([])), None, [turns, sources], api_visibility="private").then(**after_docs)
        demo.load(on.refresh, [collection], [docs_table, doc_choice, collection_box],
                  api_visibility="private").then(**after_docs)
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
