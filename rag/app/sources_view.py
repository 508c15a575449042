"""What the Sources panel shows, as data then HTML: every passage retrieved for an answer, the
cited ones first and marked, the quote highlighted inside its passage, where it is in words.

Each answer keeps its own sources: the chat stores one `passages_of(answer)` list per turn and the
panel renders every turn (the newest open), so [n] in an older answer still finds its passage.
Anchors are `src-<turn>-<n>`; the page's script (web/assets/app.js) opens and scrolls to them when [n] in an
answer is clicked. All document text is HTML-escaped here: a document cannot inject markup.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

#: One naming rule for sources everywhere (chat, panel, export): the file name, never a server path.
SLIDE_TYPES = {".pptx"}


def source_name(source: str) -> str:
    return Path(str(source)).name or str(source)


def location(source: str, page=None, metadata: dict | None = None) -> str:
    """Where a passage is, in words: "handbook.pdf, page 2", "deck.pptx, slide 3",
    "prices.xlsx, sheet Prices, row 4"."""
    name = source_name(source)
    meta = metadata or {}
    parts = [name]
    if meta.get("sheet"):
        parts.append(f"sheet {meta['sheet']}")
    if meta.get("row"):
        parts.append(f"row {meta['row']}")
    if page:
        parts.append(f"{'slide' if Path(name).suffix.lower() in SLIDE_TYPES else 'page'} {page}")
    return ", ".join(parts)


def closeness(score: float) -> str:
    """The similarity score in words (a number like 0.28 means nothing to a reader)."""
    if score >= 0.6:
        return "close match"
    if score >= 0.4:
        return "fair match"
    return "loose match"


def passages_of(answer) -> list[dict]:
    """Every passage the answer's model saw, as plain data: cited ones first (in citation order),
    then the rest by rank. `n` is the number the answer cites it by."""
    cited = {c.n: c for c in answer.citations}
    out = []
    for i, hit in enumerate(answer.passages or [], start=1):
        c = cited.get(i)
        out.append({
            "n": i,
            "source": hit.source,
            "name": source_name(hit.source),
            "page": hit.page,
            "where": location(hit.source, hit.page, hit.metadata),
            "text": hit.text,
            "score": hit.score,
            "cited": c is not None,
            "quote": (_quote(c) or best_sentence(hit.text, answer.answer)) if c else None,
            "chunk_id": hit.chunk_id,
            "pdf": Path(hit.source).suffix.lower() == ".pdf" and bool(hit.page),
        })
    if not out:  # an answer from before passages were kept: its citations are all there is
        out = [{"n": c.n, "source": c.source, "name": source_name(c.source), "page": c.page,
                "where": location(c.source, c.page), "text": c.text, "score": c.score, "cited": True,
                "quote": _quote(c), "chunk_id": c.chunk_id,
                "pdf": Path(c.source).suffix.lower() == ".pdf" and bool(c.page)} for c in answer.citations]
    order = [c.n for c in answer.citations]
    return sorted(out, key=lambda p: (not p["cited"], order.index(p["n"]) if p["n"] in order else 0, p["n"]))


def _quote(citation) -> str | None:
    """The words of the passage that back the answer (evidence-first answers carry `quote`)."""
    quote = getattr(citation, "quote", None)
    return quote.strip() if isinstance(quote, str) and quote.strip() else None


def best_sentence(passage: str, answer: str) -> str | None:
    """Until answers carry their own quote: the passage's sentence sharing most content words with
    the answer (None when none shares any), so the reader sees where to look."""
    from rag.answer.words import content_words

    said = content_words(re.sub(r"\[\d+\]", " ", answer))
    best, best_score = None, 0
    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(str(passage).split())):
        score = len(content_words(sentence) & said)
        if score > best_score:
            best, best_score = sentence, score
    return best


def highlight(text: str, quote: str | None) -> str:
    """The passage as HTML with `quote` in <mark>, found whatever the whitespace."""
    text = " ".join(str(text).split())
    if quote:
        words = [re.escape(w) for w in quote.split()]
        match = re.search(r"\s+".join(words), text, flags=re.IGNORECASE) if words else None
        if match:
            return (html.escape(text[:match.start()]) + "<mark>" + html.escape(match.group(0)) + "</mark>"
                    + html.escape(text[match.end():]))
    return html.escape(text)


def render_turn(turn: int, question: str, passages: list[dict], refused: bool, open_: bool,
                status: str = "answered") -> str:
    cited = sum(p["cited"] for p in passages)
    if refused:
        summary = "not found in your documents" + (f"; {len(passages)} passages were searched" if passages else "")
    else:
        summary = f"{cited} cited of {len(passages)} retrieved"
    parts = [f'<details class="turn-sources" id="turn-{turn}"{" open" if open_ else ""}>',
             f"<summary><b>{html.escape(_short(question))}</b> — {summary}</summary>"]
    if status == "unsure":
        parts.append('<p class="src-note"><b>Not sure.</b> No answer could be checked against your documents; '
                     'the closest evidence is highlighted.</p>')
    elif not refused and passages and not cited:
        parts.append('<p class="src-note">The answer cites no passage; treat it with care.</p>')
    for p in passages:
        label = "cited" if p["cited"] else "not cited"
        opener = (f' <button class="open-page" data-ref="{turn}:{p["n"]}" type="button">open page</button>'
                  if p["pdf"] else "")
        parts.append(
            f'<div class="src {"cited" if p["cited"] else "uncited"}" id="src-{turn}-{p["n"]}">'
            f'<div class="src-head"><span class="src-n">[{p["n"]}]</span> <b>{html.escape(p["where"])}</b>'
            f' <span class="src-label">{label} · {closeness(p["score"])}</span>{opener}</div>'
            f'<p class="src-text">{highlight(p["text"], p["quote"])}</p></div>'
        )
    parts.append("</details>")
    return "".join(parts)


def render_panel(turns: list[dict]) -> str:
    """All turns' sources, newest first and open."""
    if not turns:
        return '<p class="src-empty">Sources appear here: every passage found for each answer, cited ones first.</p>'
    blocks = [render_turn(i, t["question"], t.get("passages", []), t.get("refused", False), i == len(turns) - 1,
                          t.get("status", "answered"))
              for i, t in enumerate(turns)]
    return '<div id="sources-list">' + "".join(reversed(blocks)) + "</div>"


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def link_markers(answer: str, turn: int, numbers: set[int]) -> str:
    """[n] in the answer's Markdown (plain, or escaped as `\\[n\\]` by rag.app.markup.inert) as links to
    its passage in the panel (only numbers it has). The link is a fragment of this page: it fetches nothing."""
    def link(m: re.Match) -> str:
        n = int(m.group(1))
        return f"[\\[{n}\\]](#src-{turn}-{n})" if n in numbers else m.group(0)

    return re.sub(r"\\?\[(\d{1,2})\\?\]", link, answer)
