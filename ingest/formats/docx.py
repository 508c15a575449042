"""Word (DOCX, python-docx) into sections: paragraphs and table rows in body order, under the
heading path of the Heading N / Title styles."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.documents import Document

from ingest.formats.base import Budget, LoadError, Sections, check_zip, detail, squash

_HEADING = re.compile(r"heading\s*(\d)", re.IGNORECASE)
_W_T = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}t"  # a run's text element


def load(path: Path) -> list[Document]:
    check_zip(path, "DOCX")
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except Exception as exc:
        raise LoadError(f"not a valid DOCX ({detail(exc)})") from exc
    # Style names looked up once: `paragraph.style` searches the styles part on every call, which
    # took 150+ s for a file of 700,000 empty paragraphs.
    from docx.enum.style import WD_STYLE_TYPE

    styles = {s.style_id: s.name or "" for s in document.styles}
    default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    default_style = (default.name if default is not None else "") or ""
    budget = Budget("paragraphs and table rows")
    out = Sections()
    for block in document.iter_inner_content():  # paragraphs and tables in body order
        budget.tick()
        if isinstance(block, Table):
            for row in _table_rows(block, budget):
                out.add(row)
            continue
        if next(block._p.iter(_W_T), None) is None:
            continue  # no text run: nothing to index (and `block.text`'s XPath is the costly part)
        style_id = block._p.style
        style = styles.get(style_id, default_style) if style_id else default_style
        m = _HEADING.match(style)
        if (m or style == "Title") and block.text.strip():
            out.heading(int(m.group(1)) if m else 0, block.text)
        else:
            out.add(block.text)
    return out.finish()


def _table_rows(table, budget: Budget) -> list[str]:
    rows = []
    for row in table.rows:
        budget.tick()
        seen, cells = set(), []
        for cell in row.cells:  # merged cells repeat the same <w:tc>; keep it once
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(squash(cell.text))
        rows.append(" | ".join(c for c in cells if c))
    return rows
