"""OCR: scanned and mixed PDFs, images and multi-page TIFFs become searchable with the right page;
hostile images fail with a reason and nothing else is lost; the read report says what OCR did.

Tests that run the real OCR models are marked slow and kept few: a page costs seconds."""

from __future__ import annotations

import json
import re

import pytest

import docgen
from docgen_scans import (make_epub, make_mixed_pdf, make_photo, make_png_bomb, make_png_header_only,
                          make_scanned_pdf, make_tiff, make_truncated_image)
from ingest import ocr, stats
from ingest.formats import LoadError, load_file
from rag.app.cli import main
from rag.schema import FileResult, ReadReport


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv)
    return code, json.loads(out), err


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    return path


# ------------------------------------------------------------------ fast: no OCR model runs

@pytest.mark.parametrize("text,usable", [
    ("", False),
    ("  \n 3 \n", False),  # a page number alone
    ("The harbour crane lifted eleven thousand containers.", True),
    ("\ue000\ue001\ue002\ue003" * 10, False),  # a font without a Unicode map: private-use characters
    ("!\"#$%&'()*+,-./:;<=>?@[]^_`{|}~" * 3 + "abc", False),  # symbols for letters
])
def test_which_pages_have_a_usable_text_layer(text, usable):
    assert ocr.usable_text(text) is usable


def test_boxes_become_lines_and_paragraphs_in_reading_order():
    def box(x, y, w=100, h=20):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    # given out of order: two words on one line, a second line, then a paragraph after a gap
    boxes = [box(300, 101), box(100, 100), box(100, 125), box(100, 200), box(100, 300)]
    txts = ["world", "hello", "second line", "new paragraph", "_"]  # "_": a filled shape read as text
    assert ocr._layout(boxes, txts) == "hello world\nsecond line\n\nnew paragraph"


def test_hostile_images_fail_with_a_clear_reason_before_any_decoding(tmp_path):
    cases = {
        make_png_header_only(tmp_path / "huge.png"): "900 megapixels",  # 30,000 x 30,000
        make_png_bomb(tmp_path / "bomb.png"): "12,000 x 12,000 pixels",  # 140 KB on disk, 144 MB decoded
        make_truncated_image(tmp_path / "cut.png"): "truncated or corrupt image",
        make_truncated_image(tmp_path / "cut.jpg", "JPEG"): "truncated or corrupt image",
        docgen.make_random_bytes(tmp_path / "noise.webp"): "not a valid or complete image",
        docgen.make_text(tmp_path / "text.tiff", "just text"): "not a valid or complete image",
    }
    assert (tmp_path / "bomb.png").stat().st_size < 500_000
    for path, reason in cases.items():
        with pytest.raises(LoadError) as info:
            load_file(path)
        assert reason in str(info.value), (path.name, str(info.value))
        if "pixels" in reason:
            assert "possible decompression bomb" in str(info.value)


def test_ocr_off_says_so_for_images_and_scans(tmp_path):
    with ocr.using(ocr.OcrOptions(mode="off")):
        with pytest.raises(LoadError, match=r"OCR is off \(RAG_OCR=off\)"):
            load_file(make_photo(tmp_path / "note.png", ["Hello there"]))
        with pytest.raises(LoadError) as info:
            load_file(docgen.make_image_only_pdf(tmp_path / "scan.pdf", n_pages=2))
    assert "no extractable text" in str(info.value) and "OCR is off" in str(info.value)
    assert "RAG_OCR=auto" in str(info.value)


def test_text_pdf_is_not_ocrd_and_reports_its_pages(tmp_path):
    path = docgen.make_pdf(tmp_path / "a.pdf", ["A page with a perfectly good text layer.", "And a second one, also fine."])
    with stats.collecting() as found:
        docs = load_file(path)
    assert [d.metadata for d in docs] == [{"page": 1}, {"page": 2}]
    assert (found.pages, found.ocr_pages, found.text_pages, found.empty_pages, found.ocr_only) == (2, 0, 2, 0, False)


def test_read_report_round_trips_through_chunk_metadata():
    report = ReadReport(pages=3, characters=1234, ocr_pages=2, empty_pages=1, ocr_only=False, seconds=4.5)
    meta = report.to_metadata()
    assert all(v is not None for v in meta.values())  # Chroma refuses None
    assert ReadReport.from_metadata({"source": "x", **meta}) == report
    assert ReadReport.from_metadata({"source": "x"}) is None  # ingested before reports existed
    assert report.describe() == "3 pages, 1,234 chars, 2 OCR'd, 1 without text"
    assert ReadReport(pages=1, characters=10, ocr_pages=1, ocr_only=True).describe() == "1 page, 10 chars, text from OCR only"


def test_upload_table_shows_the_read_report():
    from rag.app.web import render_results

    read = ReadReport(pages=2, characters=900, ocr_pages=2, ocr_only=True, seconds=5.0)
    table = render_results([FileResult("scan.pdf", "added", chunks=3, read=read, seconds=6.2),
                            FileResult("bad.png", "failed", error="truncated or corrupt image")])
    rows = table.splitlines()
    assert rows[0] == "| file | result | chunks | read | seconds | reason |"
    assert rows[2] == "| scan.pdf | added | 3 | 2 pages, 900 chars, text from OCR only (2 pages) | 6.2 |  |"
    assert rows[3] == "| bad.png | FAILED |  |  |  | truncated or corrupt image |"


def test_ocr_setting_is_validated(monkeypatch):
    from rag.errors import ConfigError
    from rag.settings import load_settings

    monkeypatch.setenv("RAG_OCR", "sometimes")
    with pytest.raises(ConfigError, match="RAG_OCR"):
        load_settings()
    monkeypatch.setenv("RAG_OCR", "force")
    monkeypatch.setenv("RAG_OCR_MAX_PAGES", "5")
    settings = load_settings()
    assert (settings.ocr, settings.ocr_max_pages) == ("force", 5)


# ------------------------------------------------------------------ slow: the real OCR models

SCAN = [["Quarterly shipping report", "", "The harbour crane in Narvik lifted", "eleven thousand containers in May."],
        ["Appendix", "The auditor was Ingrid Solberg."]]


@pytest.mark.slow
def test_scans_photos_tiffs_and_epubs_are_searchable_with_the_right_page(tmp_path, data_dir, capsys):
    docs = tmp_path / "docs"
    make_scanned_pdf(docs / "scan.pdf", SCAN)
    make_mixed_pdf(docs / "mixed.pdf", [
        ("text", ["Minutes of the board meeting. The budget for the new library was approved unanimously."]),
        ("scan", ["The lighthouse at Lindesnes", "was painted white in 1915."]),
    ])
    make_photo(docs / "note.png", ["Choir practice moved to Thursday", "in the blue room at half past six."])
    make_tiff(docs / "fax.tiff", [["Fax cover sheet"], ["The night ferry to Bodo", "leaves from pier seven."]])
    make_epub(docs / "book.epub", [("The Sea", "<p>Currents run north along the coast of Lofoten.</p>"),
                                   ("Birds", "<p>Puffins nest on the eastern cliffs of Runde.</p>")])

    code, report, err = run_json(capsys, "ingest", str(docs), "--json")
    assert code == 0, (err, report)
    files = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert {n: f["status"] for n, f in files.items()} == dict.fromkeys(
        ["book.epub", "fax.tiff", "mixed.pdf", "note.png", "scan.pdf"], "added")
    got = {n: (f["pages"], f["ocr_pages"], f["empty_pages"], f["ocr_only"]) for n, f in files.items()}
    assert got == {"scan.pdf": (2, 2, 0, True), "mixed.pdf": (2, 1, 0, False), "note.png": (1, 1, 0, True),
                   "fax.tiff": (2, 2, 0, True), "book.epub": (None, 0, 0, False)}
    assert all(f["read_seconds"] >= 0 and f["characters"] > 20 for f in files.values())  # a small EPUB reads in under 5 ms: 0.0 s at two decimals

    expected = {  # query -> (file, page)
        "How many containers did the harbour crane in Narvik lift?": ("scan.pdf", 1),
        "Who was the auditor?": ("scan.pdf", 2),
        "When was the lighthouse at Lindesnes painted white?": ("mixed.pdf", 2),
        "board meeting library budget": ("mixed.pdf", 1),
        "When is choir practice?": ("note.png", None),
        "Which pier does the night ferry to Bodo leave from?": ("fax.tiff", 2),
        "Where do puffins nest?": ("book.epub", None),
    }
    for query, (name, page) in expected.items():
        code, hits, err = run_json(capsys, "search", query, "--json", "--k", "1")
        assert code == 0, err
        assert (hits[0]["source"].rsplit("/", 1)[-1], hits[0]["page"]) == (name, page), (query, hits[0])
    code, hits, _ = run_json(capsys, "search", "eleven thousand containers", "--json", "--k", "1")
    assert "eleven thousand containers" in hits[0]["text"]  # the OCR text itself, not just the right page

    # the terminal and `rag docs list` say which files were read by OCR only
    code, out, _ = run(capsys, "docs", "list")
    lines = {m.group(1).rsplit("/", 1)[-1]: m.group(2)
             for m in (re.search(r" chunks  (\S+)  \((.*)\)$", line) for line in out.splitlines()) if m}
    assert "text from OCR only (2 pages)" in lines["scan.pdf"] and "2 pages" in lines["scan.pdf"]
    assert "1 OCR'd" in lines["mixed.pdf"] and "OCR only" not in lines["mixed.pdf"]
    assert "OCR" not in lines["book.epub"]
    code, out, _ = run(capsys, "ingest", str(docs / "scan.pdf"))
    assert re.match(r"unchanged +\d+ chunks  \S+scan\.pdf  \(2 pages, [\d,]+ chars, text from OCR only", out)


@pytest.mark.slow
def test_page_limit_and_hostile_images_in_one_batch_lose_nothing_else(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("RAG_OCR_MAX_PAGES", "1")
    docs = tmp_path / "docs"
    make_scanned_pdf(docs / "long_scan.pdf", [["Page one mentions the red kayak."], ["Page two mentions the green canoe."]])
    make_png_header_only(docs / "huge.png")
    make_png_bomb(docs / "bomb.png")
    make_truncated_image(docs / "cut.jpg", "JPEG")
    docgen.make_pdf(docs / "plain.pdf", ["A plain text page about the yellow submarine."])

    code, report, err = run_json(capsys, "ingest", str(docs), "--json")
    assert code == 1  # some files failed
    files = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert {n: f["status"] for n, f in files.items()} == {
        "long_scan.pdf": "added", "plain.pdf": "added", "huge.png": "failed", "bomb.png": "failed", "cut.jpg": "failed"}
    scan = files["long_scan.pdf"]
    assert (scan["pages"], scan["ocr_pages"], scan["empty_pages"]) == (2, 1, 1)
    assert "RAG_OCR_MAX_PAGES=1" in scan["warning"] and "1 more pages" in scan["warning"]
    assert "decompression bomb" in files["huge.png"]["error"] and "decompression bomb" in files["bomb.png"]["error"]
    assert "truncated" in files["cut.jpg"]["error"]
    for query, name in [("red kayak", "long_scan.pdf"), ("yellow submarine", "plain.pdf")]:
        code, hits, _ = run_json(capsys, "search", query, "--json", "--k", "1")
        assert hits[0]["source"].endswith(name)
