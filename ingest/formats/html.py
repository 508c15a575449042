"""HTML (BeautifulSoup's html.parser) into sections under the h1-h6 heading path: the page's
<main> (else its <article>s, else the body), without navigation, headers, footers and scripts;
table rows as "a | b", <pre> kept as is. The EPUB loader reads its chapters with `walk`."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.documents import Document

from ingest.formats.base import BOMS, Budget, LoadError, Sections, squash

#: Elements dropped with everything inside them (and <head>, and the navigation/banner/contentinfo roles).
DROP = ["script", "style", "noscript", "template", "svg", "iframe", "form", "nav", "header", "footer", "aside"]
_BLOCK = {"address", "article", "blockquote", "body", "caption", "dd", "details", "div", "dl", "dt",
          "fieldset", "figcaption", "figure", "hr", "li", "main", "ol", "p", "section", "summary",
          "table", "tbody", "tfoot", "thead", "ul"}
#: A start tag: "<" and a letter, also in UTF-16 (either byte order puts a NUL between them).
_START_TAG = re.compile(rb"<\x00?[A-Za-z]")


def count_elements(data: bytes, budget: Budget) -> None:
    """Charge the budget with the document's elements, counted by their start tags before any
    parsing: 2,000,000 empty <p> (16 MB) took 74 s and 2.3 GB to parse; now it is refused in
    well under a second. The walk after parsing then only watches the clock."""
    budget.tick(len(_START_TAG.findall(data)))


def load(path: Path) -> list[Document]:
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    if b"\x00" in data[:4096] and not any(data.startswith(bom) for bom, _ in BOMS):
        raise LoadError("binary data, not text")
    budget = Budget("HTML elements")
    count_elements(data, budget)
    soup = BeautifulSoup(data, "html.parser")  # bytes: bs4 honours BOMs and <meta charset>
    roles = soup.find_all(attrs={"role": ["navigation", "banner", "contentinfo"]})
    for tag in [*soup.find_all(["head", *DROP]), *roles]:
        if tag.name == "header" and tag.find_parent(["main", "article"]):
            continue  # an article's own header usually holds its title
        tag.decompose()
    roots = [t for t in soup.find_all("main") if not t.find_parent("main")]
    roots = roots or [t for t in soup.find_all("article") if not t.find_parent("article")]
    out, buf = Sections(), []
    for root in roots or [soup]:
        walk(root, out, buf, budget)
        flush(out, buf)
    return out.finish()


def flush(out: Sections, buf: list[str]) -> None:
    """The inline text gathered in `buf` becomes one paragraph of `out`."""
    out.add(squash("".join(buf)))
    buf.clear()


def walk(node, out: Sections, buf: list[str], budget: Budget) -> None:
    """Sections from an element tree; `budget` was charged with the elements (count_elements):
    the walk watches its clock."""
    from bs4 import NavigableString, Tag
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    for i, child in enumerate(node.children):
        if i % 512 == 511:
            budget.check_time()
        if isinstance(child, NavigableString):
            if not isinstance(child, (Comment, Declaration, Doctype, ProcessingInstruction)):
                buf.append(str(child))
        elif not isinstance(child, Tag):
            continue
        elif re.fullmatch(r"h[1-6]", child.name):
            flush(out, buf)
            out.heading(int(child.name[1]), child.get_text(" "))
        elif child.name == "tr":
            flush(out, buf)
            cells = [squash(c.get_text(" ")) for c in child.find_all(["td", "th"], recursive=False)]
            out.add(" | ".join(c for c in cells if c))
        elif child.name == "pre":
            flush(out, buf)
            out.add(child.get_text().strip("\n"))
        elif child.name == "br":
            buf.append("\n")
        elif child.name in _BLOCK:
            flush(out, buf)
            budget.check_time()
            walk(child, out, buf, budget)
            flush(out, buf)
        else:
            walk(child, out, buf, budget)
