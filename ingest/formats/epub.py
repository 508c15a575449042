"""EPUB (2 and 3) into sections: chapters in reading order, each chapter's title as a heading.

An EPUB is a zip of XHTML chapters. `META-INF/container.xml` names the package file (OPF), whose
spine gives the reading order; the table of contents (EPUB 3 nav document, or EPUB 2 NCX) gives
each chapter's title. Chapters are read with the HTML loader's walker, so headings inside a
chapter nest under its title ("The Sea > Currents"). Parsed with the standard zipfile and
BeautifulSoup's html.parser (no entity expansion, tolerant of sloppy XML), after the same
zip-bomb checks as DOCX. A DRM-encrypted book is refused with that reason.
"""

from __future__ import annotations

import posixpath
import warnings
import zipfile
from pathlib import Path
from urllib.parse import unquote, urldefrag

from langchain_core.documents import Document

from ingest.formats import html
from ingest.formats.base import Budget, LoadError, Sections, check_zip, detail, squash

_XHTML = {"application/xhtml+xml", "text/html", "application/xml", "text/xml"}
_MAX_MEMBER = 50 * 1024 * 1024  # one chapter or package file; the zip check bounds the total


def _local(tag) -> str:
    return (tag.name or "").split(":")[-1]


def _find_all(soup, name: str):
    return soup.find_all(lambda t: _local(t) == name)


def _soup(data: bytes):
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)  # on purpose: tolerant, no entity expansion
        return BeautifulSoup(data, "html.parser")


class _Chapters(Sections):
    """Sections whose heading path starts with the chapter title from the table of contents."""

    title = ""

    def chapter(self, title: str) -> None:
        self.title = squash(title)
        self.heading(0, self.title)

    def heading(self, level: int, text: str) -> None:
        if level > 0 and self.title and squash(text).casefold() == self.title.casefold():
            self.flush()  # the chapter's own title inside it: already the top of the path
            return
        super().heading(level, text)


class _Book:
    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        self.names = set(zf.namelist())

    def read(self, name: str) -> bytes:
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise LoadError(f"not a valid EPUB ({name} is missing)") from None
        if info.file_size > _MAX_MEMBER:
            raise LoadError(f"not a valid EPUB ({name} is {info.file_size // 2**20} MB)")
        return self.zf.read(info)

    def package_path(self) -> str:
        if "META-INF/container.xml" not in self.names:
            raise LoadError("not a valid EPUB (no META-INF/container.xml)")
        rootfile = next((r for r in _find_all(_soup(self.read("META-INF/container.xml")), "rootfile")
                         if r.get("full-path")), None)
        if rootfile is None:
            raise LoadError("not a valid EPUB (container.xml names no package file)")
        return rootfile["full-path"]

    def encrypted(self) -> set[str]:
        """Content files under DRM (font obfuscation, also listed in encryption.xml, is harmless)."""
        if "META-INF/encryption.xml" not in self.names:
            return set()
        refs = _find_all(_soup(self.read("META-INF/encryption.xml")), "cipherreference")
        return {unquote(r.get("uri", "")) for r in refs}


def _resolve(base: str, href: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(urldefrag(href)[0])))


def _toc_titles(book: _Book, opf_path: str, manifest: dict[str, dict], toc_id: str | None) -> dict[str, str]:
    """Chapter path -> its first title in the table of contents (EPUB 3 nav, else EPUB 2 NCX)."""
    titles: dict[str, str] = {}
    nav = next((i for i in manifest.values() if "nav" in i["properties"]), None)
    if nav and nav["path"] in book.names:
        soup = _soup(book.read(nav["path"]))
        tocs = [n for n in _find_all(soup, "nav") if "toc" in (n.get("epub:type") or n.get("type") or "")]
        for a in (tocs[0] if tocs else soup).find_all("a", href=True):
            titles.setdefault(_resolve(nav["path"], a["href"]), squash(a.get_text(" ")))
    ncx = manifest.get(toc_id or "") or next(
        (i for i in manifest.values() if i["media_type"] == "application/x-dtbncx+xml"), None)
    if not titles and ncx and ncx["path"] in book.names:
        for point in _find_all(_soup(book.read(ncx["path"])), "navpoint"):
            label = next(iter(_find_all(point, "text")), None)
            content = next(iter(_find_all(point, "content")), None)
            if label is not None and content is not None and content.get("src"):
                titles.setdefault(_resolve(ncx["path"], content["src"]), squash(label.get_text(" ")))
    return {path: title for path, title in titles.items() if title}


def _chapter_into(data: bytes, out: _Chapters, budget: Budget) -> None:
    html.count_elements(data, budget)  # before parsing: one budget for the whole book
    soup = _soup(data)
    for tag in soup.find_all(["head", *html.DROP]):
        tag.decompose()
    buf: list[str] = []
    html.walk(soup.find("body") or soup, out, buf, budget)
    html.flush(out, buf)


def load(path: Path) -> list[Document]:
    check_zip(path, "EPUB")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_book(_Book(zf))
    except LoadError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise LoadError(f"not a valid EPUB ({detail(exc)})") from exc


def _read_book(book: _Book) -> list[Document]:
    opf_path = book.package_path()
    opf = _soup(book.read(opf_path))
    manifest = {
        item.get("id"): {
            "path": _resolve(opf_path, item.get("href", "")),
            "media_type": (item.get("media-type") or "").lower(),
            "properties": (item.get("properties") or "").split(),
        }
        for item in _find_all(opf, "item") if item.get("id") and item.get("href")
    }
    spine = next(iter(_find_all(opf, "spine")), None)
    if spine is None:
        raise LoadError("not a valid EPUB (its package file has no spine)")
    chapters = [manifest[ref["idref"]] for ref in _find_all(spine, "itemref")
                if ref.get("idref") in manifest and ref.get("linear", "yes") != "no"]
    chapters = [c for c in chapters if c["media_type"] in _XHTML and "nav" not in c["properties"]]
    if not chapters:
        raise LoadError("EPUB has no chapters in its reading order (spine)")
    if {c["path"] for c in chapters} & book.encrypted():
        raise LoadError("EPUB is DRM-protected (its chapters are encrypted); remove the DRM with the "
                        "software it was bought for, or export the text")
    titles = _toc_titles(book, opf_path, manifest, spine.get("toc"))
    out, budget = _Chapters(), Budget("HTML elements in its chapters")
    for chapter in chapters:
        out.chapter(titles.get(chapter["path"], ""))
        _chapter_into(book.read(chapter["path"]), out, budget)
    return out.finish()
