"""The web documents table (fast): each row says what reading the file found, as `rag docs list`
does, in private and public mode alike, and "delete" is always the last column's cell."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rag.app.web import Handlers, doc_headers
from rag.app.workspace import Workspace
from rag.schema import DocumentInfo, ReadReport
from rag.settings import Settings

SCAN = DocumentInfo("d1", "/srv/docs/scan.pdf", 4, True,
                    ReadReport(pages=5, characters=2100, ocr_pages=3, empty_pages=1,
                               warning="OCR stopped at RAG_OCR_MAX_PAGES=3"))


def handlers(tmp_path, public: bool) -> Handlers:
    return Handlers(Workspace(Settings(data_dir=tmp_path / "data", public=public)))


@pytest.mark.parametrize("public", [False, True])
def test_row_carries_the_reading_report_and_delete_is_last(tmp_path, public):
    on = handlers(tmp_path, public)
    row = on._doc_row(SCAN, mine=True)
    headers = doc_headers(public)
    assert len(row) == len(headers) and headers[2] == "read" and row[-1] == "delete"
    assert row[2] == "5 pages, 2,100 chars, 3 OCR'd, 1 without text; OCR stopped at RAG_OCR_MAX_PAGES=3"
    assert row[0] == "scan.pdf"
    if public:
        assert row[3] == "yours" and on._doc_row(SCAN, mine=False)[3:] == ["shared (read-only)", ""]


@pytest.mark.parametrize("public", [False, True])
def test_only_a_click_on_the_delete_cell_asks_for_confirmation(tmp_path, public):
    on = handlers(tmp_path, public)
    last = len(doc_headers(public)) - 1
    box, text, source = on.ask_delete([SCAN.source], SimpleNamespace(index=[0, last], value="delete"), None)
    assert source == SCAN.source and box["visible"] is True and "scan.pdf" in text["value"]
    for col, value in ((0, "scan.pdf"), (2, "delete"), (last, "")):
        assert on.ask_delete([SCAN.source], SimpleNamespace(index=[0, col], value=value), None)[2] is None
