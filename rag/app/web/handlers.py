"""What each event of the page does: one chat turn (`chat_turn`) and the `Handlers` class, named
methods over one Workspace that rag.app.web.layout only wires. Gradio passes `request` for the
visitor's session."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import gradio as gr

from rag.app import policy
from rag.app.feedback import FeedbackLog, chat_json, chat_markdown, export_dir, make_turn, write_export
from rag.app.markup import inert, inert_line
from rag.app.quota import client_key
from rag.app.sources_view import link_markers, passages_of, render_panel, source_name
from rag.app.web.renderers import doc_headers, read_cell, render_results
from rag.app.workspace import Workspace
from rag.errors import RagError
from rag.schema import Answer
from rag.settings import load_settings

log = logging.getLogger(__name__)


def chat_turn(ws: Workspace, session: str, message: str, chat: list, history: list, collection: str | None,
              overrides: dict):
    """One turn as the chat shows it: yields (messages, history, Answer or None). The Answer comes
    with the last yield of an answered turn (the page renders its sources from it); every other
    yield carries None. Errors end the turn as a readable chat message, never a stack trace."""
    message = (message or "").strip()
    if not message:
        yield chat, history, None
        return
    # The answer is the model's text and may repeat a document's Markdown: shown as text (markup.py).
    chat = list(chat or []) + [{"role": "user", "content": inert(message)}, {"role": "assistant", "content": ""}]
    yield chat, history, None
    try:
        reply = ws.chain(session, collection, overrides).reply(message, history)
        for piece in reply:
            # the whole text so far, escaped as one: a URL split across pieces ("http:" then
            # "//host") is only seen, and made inert, once its pieces are together
            chat[-1]["content"] = inert(reply.streamed)
            yield chat, history, None
        answer = reply.answer()
        chat[-1]["content"] = inert(answer.answer)
        yield chat, history + [(message, answer.answer)], answer
    except RagError as exc:
        chat[-1]["content"] = f"⚠️ {inert(policy.redact(str(exc), ws.settings))}"
        yield chat, history, None
    except Exception as exc:  # a bug: still a message in the chat, the traceback goes to the log
        log.exception("answering failed")
        chat[-1]["content"] = f"⚠️ Something went wrong while answering ({type(exc).__name__}: {exc})."
        yield chat, history, None


def message_text(message: dict) -> str:
    """A chat message's text: Gradio sends content back as a string or a list of {"type": "text"} blocks."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return content if isinstance(content, str) else ""


class Handlers:
    """What each event of the page does, as named methods over one Workspace (rag.app.web.layout
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
        return [source_name(doc.source), doc.chunks, read_cell(doc), *access, "delete" if mine else ""]

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
                for chat_now, history_now, answer in chat_turn(self.ws, session, message, chat, history, chosen,
                                                               settings_now):
                    if answer is not None:
                        turns = turns + [self._turn(question, answer, record)]
                        numbers = {p["n"] for p in turns[-1]["passages"]}
                        chat_now[-1]["content"] = link_markers(inert(answer.answer), len(turns) - 1, numbers)
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
            {"source": self.shown(d.source), "chunks": d.chunks, "deletable": mine, "read": read_cell(d)}
            for d, mine in self.ws.documents(self.session(request), None)
        ]


def _still_stored(store, chunk_id: str) -> bool:
    """Does the store still hold the document version a chunk id names (`<doc_id>-<hash12>-<i>`)?"""
    parts = chunk_id.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return False
    doc_id, version, _ = parts
    return any(v.doc_hash.startswith(version) for v in store.versions(doc_id))


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
