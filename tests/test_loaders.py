"""Behaviour of ingest.formats on real files written by docgen."""
from __future__ import annotations

import datetime as dt
import tracemalloc

import pytest

from docgen import (make_csv, make_docx, make_empty, make_encrypted_pdf, make_html, make_image_only_pdf,
                    make_pdf, make_pptx, make_random_bytes, make_text, make_truncated_pdf, make_xlsx,
                    make_zip_bomb_docx)
from ingest.formats import LOADERS, LoadError, decode_text, load_file

ALLOWED_KEYS = {"page", "heading", "sheet", "row"}
KEY_TYPES = {"page": int, "heading": str, "sheet": str, "row": int}


def load_error(path) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_file(path)
    exc = info.value
    assert type(exc) is LoadError and exc.reason == str(exc)
    assert str(path) not in str(exc) and path.name not in str(exc)
    return exc


# ------------------------------------------------------------------ PDF

def test_pdf_one_section_per_page_numbered_from_one(tmp_path):
    long_text = " ".join(f"word{i}" for i in range(120))
    path = make_pdf(tmp_path / "a.pdf", ["Alpha page text", "", long_text])
    docs = load_file(path)
    assert [d.metadata for d in docs] == [{"page": 1}, {"page": 3}]  # the blank page has no section
    assert docs[0].page_content == "Alpha page text"
    assert docs[1].page_content.split() == long_text.split()  # wrapped lines, every word in the text layer


def test_pdf_non_ascii_round_trips(tmp_path):
    [doc] = load_file(make_pdf(tmp_path / "a.pdf", ["café – naïve"]))
    assert doc.page_content == "café – naïve"


def test_encrypted_pdf_needs_password(tmp_path):
    exc = load_error(make_encrypted_pdf(tmp_path / "enc.pdf", "top secret"))
    assert "encrypted PDF (password required)" in str(exc)


def test_encrypted_pdf_with_empty_user_password_is_read(tmp_path):
    [doc] = load_file(make_encrypted_pdf(tmp_path / "enc.pdf", "open to all", password=""))
    assert doc.page_content == "open to all" and doc.metadata == {"page": 1}


def test_image_only_pdf_says_scanned(tmp_path):
    exc = load_error(make_image_only_pdf(tmp_path / "scan.pdf", n_pages=3))
    assert "no extractable text" in str(exc) and "3 pages" in str(exc) and "OCR" in str(exc)


def test_truncated_pdf_is_invalid(tmp_path):
    assert "not a valid PDF" in str(load_error(make_truncated_pdf(tmp_path / "cut.pdf")))


def test_random_bytes_pdf_is_invalid(tmp_path):
    assert "not a valid PDF" in str(load_error(make_random_bytes(tmp_path / "junk.pdf")))


# ------------------------------------------------------------------ DOCX

def test_docx_heading_path_tables_and_order(tmp_path):
    path = make_docx(tmp_path / "d.docx", [
        ("para", "Preface before any heading."),
        ("heading", 1, "Chapter 1"),
        ("para", "Chapter one intro."),
        ("heading", 2, "Background"),
        ("para", "Before the table."),
        ("table", [["Name", "Role"], ["Ann", "Lead"]]),
        ("para", "After the table."),
        ("heading", 2, "Empty subsection"),
        ("heading", 1, "Chapter 2"),
        ("para", "Second chapter."),
    ])
    docs = load_file(path)
    assert [(d.metadata, d.page_content) for d in docs] == [
        ({}, "Preface before any heading."),
        ({"heading": "Chapter 1"}, "Chapter one intro."),
        ({"heading": "Chapter 1 > Background"},
         "Before the table.\n\nName | Role\n\nAnn | Lead\n\nAfter the table."),
        ({"heading": "Chapter 2"}, "Second chapter."),
    ]


def test_docx_title_starts_the_heading_path(tmp_path):
    path = make_docx(tmp_path / "d.docx", [("heading", 0, "Manual"), ("heading", 1, "Setup"), ("para", "x")])
    assert load_file(path)[0].metadata == {"heading": "Manual > Setup"}


@pytest.mark.parametrize("ext", [".docx", ".pptx", ".xlsx"])
def test_office_random_bytes_are_invalid(tmp_path, ext):
    exc = load_error(make_random_bytes(tmp_path / f"junk{ext}"))
    assert f"not a valid {ext[1:].upper()}" in str(exc)


def test_office_zip_that_is_not_a_document(tmp_path):
    import zipfile
    path = tmp_path / "other.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "not a word document")
    assert "not a valid DOCX" in str(load_error(path))


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory):
    return make_zip_bomb_docx(tmp_path_factory.mktemp("bomb") / "bomb.docx")


@pytest.mark.parametrize("ext", [".docx", ".pptx", ".xlsx"])
def test_zip_bomb_is_refused_quickly_without_memory(zip_bomb, tmp_path, ext):
    assert zip_bomb.stat().st_size < 2_000_000
    path = tmp_path / f"bomb{ext}"
    path.write_bytes(zip_bomb.read_bytes())
    tracemalloc.start()
    try:
        exc = load_error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Refused from the archive's directory, before inflating anything: the Python heap never holds
    # more than a few MB of the 300 it would expand to. (Time is not asserted: cores are shared;
    # the memory bound already rules out expanding it.)
    assert peak < 20_000_000
    assert "zip bomb" in str(exc) and f"{ext[1:].upper()} expands to 300 MB" in str(exc)


# ------------------------------------------------------------------ PPTX

def test_pptx_slides_titles_and_notes(tmp_path):
    path = make_pptx(tmp_path / "s.pptx", [("Welcome", "First point\nSecond point"), ("Results", "Revenue up")],
                     notes=["Greet the audience", ""])
    docs = load_file(path)
    assert [d.metadata for d in docs] == [{"page": 1, "heading": "Welcome"}, {"page": 2, "heading": "Results"}]
    assert "First point" in docs[0].page_content and "Second point" in docs[0].page_content
    assert docs[0].page_content.endswith("Greet the audience")
    assert "Revenue up" in docs[1].page_content and "Greet" not in docs[1].page_content


def test_pptx_tables_and_grouped_shapes(tmp_path):
    from pptx import Presentation
    from pptx.util import Inches

    path = make_pptx(tmp_path / "s.pptx", [("Data", "Body")])
    prs = Presentation(str(path))
    slide = prs.slides[0]
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "Metric", (0, 1): "Value", (1, 0): "Users", (1, 1): "42"}.items():
        table.cell(r, c).text = text
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(5), Inches(5), Inches(2), Inches(1)).text_frame.text = "Grouped caption"
    blank = prs.slides.add_slide(prs.slide_layouts[6])  # no title, no text: no section
    blank.shapes.add_shape(1, Inches(1), Inches(1), Inches(1), Inches(1))
    prs.save(str(path))
    [doc] = load_file(path)
    assert "Metric | Value\nUsers | 42" in doc.page_content and "Grouped caption" in doc.page_content


# ------------------------------------------------------------------ XLSX / CSV

def test_xlsx_rows_sheets_and_values(tmp_path):
    path = make_xlsx(tmp_path / "x.xlsx", {
        "Staff": [[None], ["Name", "Age", None, "Joined"],
                  ["Ann", 31.0, "extra", dt.datetime(2020, 1, 2)], [], ["Bob", 2.5, None, None]],
        "Empty": [],
        "Prices": [["Item", "Price"], ["Tea", 3]],
    })
    docs = load_file(path)
    assert [(d.metadata, d.page_content) for d in docs] == [
        ({"sheet": "Staff", "row": 3}, "Name: Ann | Age: 31 | Column 3: extra | Joined: 2020-01-02"),
        ({"sheet": "Staff", "row": 5}, "Name: Bob | Age: 2.5"),
        ({"sheet": "Prices", "row": 2}, "Item: Tea | Price: 3"),
    ]


def test_xlsx_with_only_headers_is_an_error(tmp_path):
    assert "no data rows" in str(load_error(make_xlsx(tmp_path / "x.xlsx", {"S": [["A", "B"]]})))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_csv_rows_in_several_encodings(tmp_path, encoding):
    path = make_csv(tmp_path / "c.csv", [["Name", "City"], ["Zoë", "Köln – Süd"], ["", ""], ["Bob", "Paris"]],
                    encoding=encoding)
    docs = load_file(path)
    assert [(d.metadata, d.page_content) for d in docs] == [
        ({"row": 2}, "Name: Zoë | City: Köln – Süd"),
        ({"row": 4}, "Name: Bob | City: Paris"),
    ]


def test_csv_semicolon_dialect_is_sniffed(tmp_path):
    path = make_text(tmp_path / "c.csv", "a;b\n1;2\n3;4\n", "utf-8")
    assert [d.page_content for d in load_file(path)] == ["a: 1 | b: 2", "a: 3 | b: 4"]


# ------------------------------------------------------------------ HTML

PAGE = """<!DOCTYPE html><html><head><title>Site title</title><style>p {color: red}</style></head>
<body><nav><a href="/">Home</a> <a href="/docs">Docs menu</a></nav><header>Site banner</header>
<div role="navigation">Breadcrumbs</div>
<main><h1>Guide</h1><p>Intro with <b>bold</b> words.</p><p>Second paragraph.</p>
<h2>Install</h2><h3>Linux</h3><ul><li>apt install</li><li>done</li></ul><script>var hidden = 1;</script>
<table><tr><th>OS</th><th>Cmd</th></tr><tr><td>Debian</td><td>apt</td></tr></table>
<h2>Usage</h2><p>Run&nbsp;it.</p></main><aside>Related links</aside><footer>Copyright</footer></body></html>"""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_html_keeps_main_content_with_heading_paths(tmp_path, encoding):
    docs = load_file(make_html(tmp_path / "p.html", PAGE, encoding=encoding))
    assert [(d.metadata, d.page_content) for d in docs] == [
        ({"heading": "Guide"}, "Intro with bold words.\n\nSecond paragraph."),
        ({"heading": "Guide > Install > Linux"}, "apt install\n\ndone\n\nOS | Cmd\n\nDebian | apt"),
        ({"heading": "Guide > Usage"}, "Run it."),
    ]
    text = " ".join(d.page_content for d in docs)
    for junk in ["Home", "Docs menu", "Site banner", "Breadcrumbs", "hidden", "color", "Related", "Copyright",
                 "Site title"]:
        assert junk not in text


def test_html_without_main_uses_all_articles_and_meta_charset(tmp_path):
    html = ('<html><head><meta charset="windows-1252"></head><body><div>Sidebar junk</div>'
            '<article><h2>First</h2><p>Caf\u00e9 one</p></article><article><h2>Second</h2><p>Two</p></article>'
            '</body></html>')
    docs = load_file(make_html(tmp_path / "p.htm", html, encoding="cp1252"))
    assert [(d.metadata, d.page_content) for d in docs] == [({"heading": "First"}, "Café one"),
                                                            ({"heading": "Second"}, "Two")]


def test_html_adjacent_blocks_are_not_glued(tmp_path):
    [doc] = load_file(make_html(tmp_path / "p.html", "<div>one</div><div>two<br>three</div><p>four</p>"))
    assert doc.page_content == "one\n\ntwo three\n\nfour"


# ------------------------------------------------------------------ Markdown / text

def test_markdown_heading_path_fences_and_front_matter(tmp_path):
    md = ("---\ntitle: Hidden front matter\n---\n# Guide\nIntro line one\nline two\n\nSecond para.\n"
          "## Install\n### Linux\n```bash\n# not a heading\n\necho hi\n```\n~~~\n## nor this\n~~~\n"
          "## Usage ##\nUse it.\n#hashtag is text\n")
    docs = load_file(make_text(tmp_path / "g.md", md, "utf-8"))
    assert [(d.metadata, d.page_content) for d in docs] == [
        ({"heading": "Guide"}, "Intro line one\nline two\n\nSecond para."),
        ({"heading": "Guide > Install > Linux"},
         "```bash\n# not a heading\n\necho hi\n```\n\n~~~\n## nor this\n~~~"),
        ({"heading": "Guide > Usage"}, "Use it.\n#hashtag is text"),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "cp1252"])
def test_text_encodings_round_trip(tmp_path, encoding):
    [doc] = load_file(make_text(tmp_path / "t.txt", "café – naïve\r\nsecond\rthird", encoding))
    assert doc.page_content == "café – naïve\nsecond\nthird" and doc.metadata == {}


def test_decode_text_falls_back_to_latin1_for_bytes_undefined_in_cp1252():
    assert decode_text(b"caf\xe9 \x81") == "café \x81"


@pytest.mark.parametrize("ext", [".txt", ".log", ".md", ".csv", ".html"])
def test_binary_data_is_not_text(tmp_path, ext):
    assert "binary data, not text" in str(load_error(make_random_bytes(tmp_path / f"b{ext}")))


def test_whitespace_only_text_is_an_error(tmp_path):
    assert "no text" in str(load_error(make_text(tmp_path / "w.txt", " \n\t\n", "utf-8")))


# ------------------------------------------------------------------ general contract

@pytest.mark.parametrize("ext", sorted(LOADERS))
def test_zero_byte_file(tmp_path, ext):
    assert "empty file (0 bytes)" in str(load_error(make_empty(tmp_path / f"e{ext}")))


@pytest.mark.parametrize("name,shown", [("a.xyz", "'.xyz'"), ("a.XLS", "'.xls'"), ("Makefile", "no extension")])
def test_unsupported_extension(tmp_path, name, shown):
    exc = load_error(make_text(tmp_path / name, "hello", "utf-8"))
    assert "unsupported file type" in str(exc) and shown in str(exc)
    assert ".pdf" in str(exc) and ".docx" in str(exc)


def test_missing_file(tmp_path):
    assert "not found" in str(load_error(tmp_path / "missing.txt"))


def test_extension_is_case_insensitive(tmp_path):
    assert load_file(make_text(tmp_path / "NOTES.TXT", "hi", "utf-8"))[0].page_content == "hi"


def _every_format(tmp_path):
    yield make_pdf(tmp_path / "a.pdf", ["one", "two"])
    yield make_docx(tmp_path / "a.docx", [("para", "p"), ("heading", 1, "H"), ("table", [["a", "b"]])])
    yield make_pptx(tmp_path / "a.pptx", [("T", "b")], notes=["n"])
    yield make_xlsx(tmp_path / "a.xlsx", {"S": [["h", None], [1.0, None], [None, "x"]]})
    yield make_csv(tmp_path / "a.csv", [["h", "i"], ["1", ""]])
    yield make_html(tmp_path / "a.html", "<p>x</p><h1>H</h1><p>y</p>")
    yield make_text(tmp_path / "a.md", "x\n# H\ny", "utf-8")
    yield make_text(tmp_path / "a.rst", "Title\n=====\n\ntext", "utf-8")


def test_metadata_contract_across_formats(tmp_path):
    seen = set()
    for path in _every_format(tmp_path):
        docs = load_file(path)
        assert docs, path.suffix
        for doc in docs:
            assert doc.page_content.strip() and doc.page_content == doc.page_content.strip()
            assert set(doc.metadata) <= ALLOWED_KEYS, (path.suffix, doc.metadata)
            for key, value in doc.metadata.items():
                assert value is not None and value != "" and type(value) is KEY_TYPES[key], (path.suffix, key)
        seen.add(path.suffix)
    assert seen == {".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".html", ".md", ".rst"}
