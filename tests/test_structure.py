"""Document structure the loaders recover for the indexed text: PDF headings from the outline,
from font size and weight, and numbered question headings; setext Markdown headings."""

from __future__ import annotations

import docgen
from ingest.formats import load_file

MANUAL = [
    ("heading", 1, "7 The fog horn"),
    ("para", "This chapter answers the questions keepers ask most about the horn."),
    ("heading", 2, "7.31 Why does the horn sound weak in cold weather?"),
    ("para", "Condensed water in the diaphragm chamber damps it. Drain the chamber with the brass tap."),
    ("heading", 2, "7.32 How often is the compressor serviced?"),
    ("para", "Every 400 running hours, or each spring, whichever comes first."),
    ("page",),
    ("para", "Log every service in the keeper's book with the hour meter reading."),
    ("heading", 1, "8 The lamp"),
    ("para", "The lamp rotates once every twelve seconds."),
]


def by_text(docs):
    return {d.page_content.split("\n")[0]: d.metadata for d in docs}


def test_a_pdf_outline_becomes_headings(tmp_path):
    docs = load_file(docgen.make_structured_pdf(tmp_path / "manual.pdf", MANUAL, outline=True))
    meta = by_text(docs)
    weak = meta["Condensed water in the diaphragm chamber damps it. Drain the chamber with the brass tap."]
    assert weak == {"page": 1, "heading": "7 The fog horn > 7.31 Why does the horn sound weak in cold weather?"}
    # The heading path runs on across a page break; a section never does.
    assert meta["Log every service in the keeper's book with the hour meter reading."] == {
        "page": 2, "heading": "7 The fog horn > 7.32 How often is the compressor serviced?"}
    assert meta["The lamp rotates once every twelve seconds."]["heading"] == "8 The lamp"
    assert all("7.31" not in d.page_content for d in docs)  # headings are not repeated as body text


def test_pdf_headings_from_font_size_without_an_outline(tmp_path):
    blocks = [b if b[0] != "heading" else ("heading", b[1], b[2].split(" ", 1)[1]) for b in MANUAL]  # unnumbered
    docs = load_file(docgen.make_structured_pdf(tmp_path / "plain.pdf", blocks, outline=False))
    meta = by_text(docs)
    assert meta["Every 400 running hours, or each spring, whichever comes first."]["heading"] == (
        "The fog horn > How often is the compressor serviced?")
    assert meta["The lamp rotates once every twelve seconds."]["heading"] == "The lamp"


def test_numbered_question_headings_in_body_font(tmp_path):
    docs = load_file(docgen.make_structured_pdf(tmp_path / "flat.pdf", MANUAL, outline=False, heading_fonts=False))
    meta = by_text(docs)
    assert meta["Condensed water in the diaphragm chamber damps it. Drain the chamber with the brass tap."][
        "heading"].endswith("7.31 Why does the horn sound weak in cold weather?")
    assert meta["Every 400 running hours, or each spring, whichever comes first."]["heading"].endswith(
        "7.32 How often is the compressor serviced?")


def test_a_plain_pdf_has_no_invented_headings(tmp_path):
    docs = load_file(docgen.make_pdf(tmp_path / "p.pdf", ["Quarterly report. Revenue grew.\n1. Unpack the device.\n"
                                                          "2 people attended the meeting on 3 May.", "Page two."]))
    assert [d.metadata for d in docs] == [{"page": 1}, {"page": 2}]


def test_setext_markdown_headings(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("Keeper's guide\n==============\n\nIntro text.\n\nThe lamp\n--------\n\nWind it daily.\n\n"
                    "- a list item\n---\n\nAfter a rule.\n", encoding="utf-8")
    meta = by_text(load_file(path))
    assert meta["Intro text."] == {"heading": "Keeper's guide"}
    assert meta["Wind it daily."] == {"heading": "Keeper's guide > The lamp"}
