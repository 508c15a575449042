"""EPUB: chapters in reading order with their titles as headings; broken and hostile books refused."""

from __future__ import annotations

import zipfile

import pytest

from docgen import make_random_bytes, make_zip_bomb_docx
from docgen_scans import make_epub
from ingest.formats import LoadError, load_file

CHAPTERS = [
    ("The Sea", "<h1>The Sea</h1><p>Currents run north along the coast.</p>"
                "<h2>Tides</h2><p>Spring tides reach four metres in the fjord.</p>"),
    ("Birds", "<p>Puffins nest on the eastern cliffs.</p><p>Gulls steal their fish.</p>"),
]


def load_error(path) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_file(path)
    return info.value


@pytest.mark.parametrize("epub3", [True, False], ids=["epub3-nav", "epub2-ncx"])
def test_chapters_in_order_with_titles_as_headings(tmp_path, epub3):
    docs = load_file(make_epub(tmp_path / "book.epub", CHAPTERS, epub3=epub3))
    assert [(d.metadata, d.page_content) for d in docs] == [
        ({"heading": "The Sea"}, "Currents run north along the coast."),  # its own <h1> is not repeated
        ({"heading": "The Sea > Tides"}, "Spring tides reach four metres in the fjord."),
        ({"heading": "Birds"}, "Puffins nest on the eastern cliffs.\n\nGulls steal their fish."),
    ]


def test_table_of_contents_page_is_not_indexed(tmp_path):
    docs = load_file(make_epub(tmp_path / "book.epub", CHAPTERS))
    assert not any("Contents" in d.page_content or "Contents" in d.metadata.get("heading", "") for d in docs)


def test_drm_encrypted_book_is_refused_with_that_reason(tmp_path):
    path = make_epub(tmp_path / "drm.epub", CHAPTERS)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("META-INF/encryption.xml",
                    '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                    'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                    '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
                    '<enc:CipherData><enc:CipherReference URI="OEBPS/text/chapter1.xhtml"/></enc:CipherData>'
                    "</enc:EncryptedData></encryption>")
    assert "DRM-protected" in str(load_error(path))


def test_zip_bomb_is_refused_like_docx(tmp_path):
    bomb = make_zip_bomb_docx(tmp_path / "bomb.docx", megabytes=300)
    path = tmp_path / "bomb.epub"
    path.write_bytes(bomb.read_bytes())
    assert "EPUB expands to 300 MB" in str(load_error(path)) and "zip bomb" in str(load_error(path))


def test_not_a_zip_and_no_container(tmp_path):
    assert "not a valid EPUB" in str(load_error(make_random_bytes(tmp_path / "r.epub")))
    path = tmp_path / "bare.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("chapter.xhtml", "<html><body><p>orphan</p></body></html>")
    assert "no META-INF/container.xml" in str(load_error(path))
