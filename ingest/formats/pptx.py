"""PowerPoint (PPTX, python-pptx) into sections: one per slide (its shapes' text, tables as rows,
then the speaker notes), `page` = slide number, `heading` = the slide title."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from ingest.formats.base import Budget, LoadError, check_zip, detail, doc, squash


def load(path: Path) -> list[Document]:
    check_zip(path, "PPTX")
    from pptx import Presentation

    try:
        prs = Presentation(str(path))
        slides = list(prs.slides)
    except Exception as exc:
        raise LoadError(f"not a valid PPTX ({detail(exc)})") from exc
    docs, budget = [], Budget("slides and shapes")
    for number, slide in enumerate(slides, 1):
        budget.tick()
        parts = [t for shape in slide.shapes for t in _shape_texts(shape, budget)]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            parts.append(slide.notes_slide.notes_text_frame.text)
        title = slide.shapes.title
        text = "\n\n".join(p.strip() for p in parts if p.strip()).replace("\x0b", "\n")
        docs.append(doc(text, page=number, heading=squash(title.text) if title is not None else None))
    return docs


def _shape_texts(shape, budget: Budget) -> list[str]:
    budget.tick()
    if hasattr(shape, "shapes"):  # group shape
        return [t for child in shape.shapes for t in _shape_texts(child, budget)]
    if getattr(shape, "has_text_frame", False):
        return [shape.text_frame.text]
    if getattr(shape, "has_table", False):
        rows = [" | ".join(c for c in (squash(cell.text) for cell in row.cells) if c) for row in shape.table.rows]
        return ["\n".join(r for r in rows if r)]
    return []
