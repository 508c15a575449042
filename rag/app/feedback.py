"""Thumbs up/down on answers, kept as JSONL in the data folder, and a chat exported as Markdown or JSON.

No Gradio here: the web app (rag/app/web/) and `rag feedback export` call these functions.

A turn is a plain dict, the shape the chat keeps for each answer and the JSON export writes:
    {"question": str, "answer": str, "refused": bool, "citations": [{"n", "source", "page", "text",
     ...}], "settings": {"k", "llm", "model", "temperature", "collection", ...}, "time": ISO 8601}

Each feedback line is a turn plus {"rating": "up" | "down", "id", "recorded", "session"}; the
session is a hash, never the visitor's own token. DATA_DIR/feedback.jsonl only grows (one append
per click, a line written whole under a lock), up to RAG_FEEDBACK_MAX_MB: past it new ratings are
refused (`FeedbackFull`); texts are capped so a hostile page cannot make one line huge. In public
mode each address's ratings per hour are a budget too (rag/quota.py, the web app charges it).

Exports are written to DATA_DIR/exports/<random>/chat.md|json (never the system's /tmp), refused
over RAG_MAX_EXPORT_MB, and deleted once older than the visitor TTL (`write_export` sweeps first).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from rag.errors import RagError

FILENAME = "feedback.jsonl"
RATINGS = ("up", "down")
MAX_TEXT = 20_000  # characters kept of a question, answer or passage
MAX_CITATIONS = 20

_lock = threading.Lock()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _cap(text) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def make_turn(question: str, answer_json: dict, settings: dict) -> dict:
    """A turn from an Answer.to_json() and the settings it was answered with."""
    return {
        "question": question,
        "answer": answer_json.get("answer", ""),
        "refused": bool(answer_json.get("refused", False)),
        "status": answer_json.get("status", "answered"),
        "citations": list(answer_json.get("citations", [])),
        "settings": dict(settings),
        "time": now_iso(),
    }


def _clean_turn(turn: dict) -> dict:
    citations = []
    for c in list(turn.get("citations") or [])[:MAX_CITATIONS]:
        c = dict(c)
        for key in ("text", "quote"):
            if key in c:
                c[key] = _cap(c[key])
        citations.append(c)
    return {
        "question": _cap(turn.get("question")),
        "answer": _cap(turn.get("answer")),
        "refused": bool(turn.get("refused", False)),
        "citations": citations,
        "settings": {k: v for k, v in dict(turn.get("settings") or {}).items() if "key" not in k.lower()},
        "time": turn.get("time"),
    }


class FeedbackFull(RagError):
    """feedback.jsonl reached RAG_FEEDBACK_MAX_MB; the message says so."""


class FeedbackLog:
    """DATA_DIR/feedback.jsonl, at most `max_bytes` long (None: unbounded, for the CLI's reading)."""

    def __init__(self, data_dir: Path, max_bytes: int | None = None):
        self.path = Path(data_dir) / FILENAME
        self.max_bytes = max_bytes

    def record(self, rating: str, turn: dict, session: str | None = None) -> dict:
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
        entry = {
            "id": uuid.uuid4().hex,
            "recorded": now_iso(),
            "rating": rating,
            "session": hashlib.sha256(session.encode()).hexdigest()[:16] if session else None,
            **_clean_turn(turn),
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with _lock:
            size = self.path.stat().st_size if self.path.exists() else 0
            if self.max_bytes is not None and size + len(line.encode()) > self.max_bytes:
                raise FeedbackFull(f"rating not saved: the feedback file is full ({size / 2**20:.1f} MB, limit "
                                   f"{self.max_bytes / 2**20:g} MB, RAG_FEEDBACK_MAX_MB)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
        return entry

    def entries(self) -> Iterator[dict]:
        """Every recorded entry, oldest first; a damaged line (a crash mid-write) is skipped."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and entry.get("rating") in RATINGS:
                    yield entry

    def summary(self) -> dict:
        counts = {"up": 0, "down": 0}
        for entry in self.entries():
            counts[entry["rating"]] += 1
        return {**counts, "total": counts["up"] + counts["down"], "path": str(self.path)}


# --- chat export -------------------------------------------------------------------------------
EXPORTS = "exports"


class ExportTooLarge(RagError):
    """A chat export over RAG_MAX_EXPORT_MB."""


def export_dir(data_dir: Path) -> Path:
    return Path(data_dir) / EXPORTS


def sweep_exports(folder: Path, max_age_s: float, now: float | None = None) -> int:
    """Delete export folders older than max_age_s; returns how many."""
    import shutil
    import time

    now = time.time() if now is None else now
    removed = 0
    for sub in (folder.iterdir() if folder.is_dir() else ()):
        try:
            if now - sub.stat().st_mtime > max_age_s:
                shutil.rmtree(sub, ignore_errors=True) if sub.is_dir() else sub.unlink(missing_ok=True)
                removed += 1
        except OSError:
            pass
    return removed


def write_export(folder: Path, text: str, kind: str, max_bytes: int, max_age_s: float) -> Path:
    """The export as DATA_DIR/exports/<random>/chat.<kind>, after sweeping old ones; ExportTooLarge
    over max_bytes (nothing is written)."""
    data = text.encode("utf-8")
    if len(data) > max_bytes:
        raise ExportTooLarge(f"export refused: the chat is {len(data) / 2**20:.1f} MB, the limit is "
                             f"{max_bytes / 2**20:g} MB (RAG_MAX_EXPORT_MB); start a new chat")
    sweep_exports(folder, max_age_s)
    sub = folder / uuid.uuid4().hex
    sub.mkdir(parents=True)
    path = sub / f"chat.{kind}"
    path.write_bytes(data)
    return path

def chat_json(turns: Iterable[dict], title: str = "groundwork-rag chat") -> str:
    return json.dumps({"title": title, "exported": now_iso(), "turns": [_clean_turn(t) for t in turns]},
                      ensure_ascii=False, indent=1) + "\n"


def where(citation: dict) -> str:
    """The one naming rule for a source: file name, then page in words when there is one."""
    name = Path(str(citation.get("source", ""))).name or str(citation.get("source", ""))
    page = citation.get("page")
    return f"{name}, page {page}" if page else name


def chat_markdown(turns: Iterable[dict], title: str = "groundwork-rag chat") -> str:
    """The conversation as Markdown: each question, its answer, and the passages it cited (quoted)."""
    lines = [f"# {title}", "", f"_Exported {now_iso()}_", ""]
    for i, turn in enumerate(turns, start=1):
        lines += [f"## {i}. {turn.get('question', '').strip()}", "", (turn.get("answer") or "").strip(), ""]
        citations = turn.get("citations") or []
        if turn.get("refused"):
            lines += ["_Not found in the documents._", ""]
        elif citations:
            lines += ["**Sources**", ""]
            for c in citations:
                quote = " ".join(str(c.get("quote") or c.get("text") or "").split())
                quote = quote[:600] + ("…" if len(quote) > 600 else "")
                lines.append(f"- [{c.get('n')}] {where(c)}" + (f": “{quote}”" if quote else ""))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
