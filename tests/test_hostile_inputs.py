"""Hostile inputs: files built to break a parser, exhaust memory or escape the data folder.

Every input is generated here (tests/docgen.py). Real loaders, real Chroma in tmp_path, the real
packaged embedder. Each file ends either with its correct text retrievable by search, or `failed`
with a reason a user can act on; nothing stored before is lost, and the batch ends in bounded
time without unpacking the zip bomb.
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc
import unicodedata
from pathlib import Path

import docgen
import pytest

from rag.app.workspace import Workspace

MB = 1024 * 1024

NEEDLE = "The spare lamp room key of Skarvøy hangs behind the brass chart table."
UTF16_FACT = "The harbour master in Ålesund opens the office at 06:30 on Saturdays."
CP1252_FACT = "Café Måke serves crème brûlée and a naïve pâté for €12 on the pier."
DOCX_FACT = "The fog horn compressor is drained every Friday after the evening watch."
PDF_FACT = "Storm shutters on the keeper's cottage are closed when the wind passes 20 m/s."


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    return docgen.make_zip_bomb_docx(tmp_path_factory.mktemp("bomb") / "bomb.docx")


def snapshot(root: Path, skip: Path | None = None) -> dict[str, int]:
    """Every entry under root with its size (folders -1, symlinks -2), minus `skip` and below."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip:
            dirnames[:] = []
            continue
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if skip is None or Path(p) != skip:
                out[os.path.relpath(p, root)] = -2 if os.path.islink(p) else -1
        for name in filenames:
            p = os.path.join(dirpath, name)
            out[os.path.relpath(p, root)] = -2 if os.path.islink(p) else os.path.getsize(p)
    return out


def covered(text: str, chunks: list[str]) -> bool:
    """The chunks, in order, cover `text` from start to end with gaps of white space at most."""
    pos = 0  # end of what is covered so far
    start = 0
    for chunk in chunks:
        at = text.find(chunk, start)
        if at < 0 or text[pos:at].strip():
            return False
        start, pos = at + 1, max(pos, at + len(chunk))
    return not text[pos:].strip()


def stored_chunks(store, source: str) -> list[str]:
    got = store.collection.get(where={"source": source}, include=["documents", "metadatas"])
    pairs = sorted(zip(got["metadatas"], got["documents"]), key=lambda p: p[0]["chunk_index"])
    return [text for _, text in pairs]


# ------------------------------------------------------------------ one hostile batch

@pytest.mark.slow
def test_hostile_batch_fails_cleanly_and_keeps_everything_else(ingestor, store, settings, corpus, tmp_path, zip_bomb):
    # Documents stored before the batch.
    assert ingestor.ingest([corpus]).ok
    before = {d.source: (d.chunks, d.complete) for d in store.documents()}
    assert len(before) == 7
    chunks_before = store.count()
    # One of them is corrupted on disk afterwards: its stored version must survive the failure.
    report_pdf = corpus / "report.pdf"
    report_pdf.write_bytes(report_pdf.read_bytes()[:400])

    h = tmp_path / "hostile"
    h.mkdir()
    (h / "bomb.docx").write_bytes(zip_bomb.read_bytes())
    docgen.make_encrypted_pdf(h / "encrypted.pdf", "secret figures")
    docgen.make_image_only_pdf(h / "scanned.pdf", n_pages=2)
    docgen.make_truncated_pdf(h / "truncated.pdf")
    for ext in (".pdf", ".docx", ".pptx", ".xlsx", ".txt", ".html"):
        docgen.make_random_bytes(h / f"random{ext}", seed=len(ext))
    for ext in (".txt", ".pdf", ".docx"):
        docgen.make_empty(h / f"empty{ext}")
    docgen.make_text(h / "headings.md", "# Title\n\n## Section one\n\n   \n\n### Sub\n\n\t\n## Section two\n")
    docgen.make_text(h / "blank.txt", " \n\n\t  \r\n   \n")
    docgen.make_html(h / "nav_only.html", "<html><head><title>Menu</title></head><body><nav><a href='/'>Home</a> | "
                     "<a href='/a'>About</a></nav><script>var x = 'hidden words';</script>"
                     "<style>p{color:red}</style></body></html>")
    docgen.make_html(h / "utf16.html", f"<html><body><main><h1>Opening hours</h1><p>{UTF16_FACT}</p></main>"
                     "</body></html>", encoding="utf-16")
    docgen.make_text(h / "cp1252.txt", f"Menu\n\n{CP1252_FACT}\n", encoding="cp1252")
    docgen.make_docx(h / "valid.docx", [("heading", 1, "Machinery"), ("para", DOCX_FACT)])
    docgen.make_pdf(h / "valid.pdf", [PDF_FACT])
    docgen.make_long_line(h / "long_line.txt", megabytes=2, needle=NEEDLE)
    docgen.make_unspaced_text(h / "unspaced.txt", n_chars=200_000)

    assert (h / "utf16.html").read_bytes()[:2] == b"\xff\xfe"
    assert b"\n" not in (h / "long_line.txt").read_bytes() and (h / "long_line.txt").stat().st_size >= 2 * MB
    assert not any(c.isspace() for c in (h / "unspaced.txt").read_text())

    failing = {
        "bomb.docx": ["zip bomb", "DOCX expands to 300 MB"],
        "encrypted.pdf": ["encrypted PDF", "password required"],
        "scanned.pdf": ["no extractable text", "scanned", "OCR"],
        "truncated.pdf": ["not a valid PDF"],
        "random.pdf": ["not a valid PDF"],
        "random.docx": ["not a valid DOCX", "not a zip archive"],
        "random.pptx": ["not a valid PPTX", "not a zip archive"],
        "random.xlsx": ["not a valid XLSX", "not a zip archive"],
        "random.txt": ["binary data, not text"],
        "random.html": ["binary data, not text"],
        "empty.txt": ["empty file (0 bytes)"],
        "empty.pdf": ["empty file (0 bytes)"],
        "empty.docx": ["empty file (0 bytes)"],
        "headings.md": ["no text found", "Markdown"],
        "blank.txt": ["no text found", "plain text"],
        "nav_only.html": ["no text found", "HTML"],
        "report.pdf": ["not a valid PDF"],  # the corrupted, previously stored document
    }
    valid = ["utf16.html", "cp1252.txt", "valid.docx", "valid.pdf", "long_line.txt", "unspaced.txt"]
    # The bomb first, so that memory is measured over it alone; the corpus again at the end.
    paths = [h / "bomb.docx"] + sorted(p for p in h.iterdir() if p.name != "bomb.docx") + [corpus]

    times: dict[str, float] = {}
    memory: dict[str, int] = {}
    last = [time.perf_counter()]

    def on_result(result):
        now = time.perf_counter()
        times[Path(result.path).name] = now - last[0]
        if Path(result.path).name == "bomb.docx":
            memory["traced_peak"] = tracemalloc.get_traced_memory()[1]
            memory["rss_peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            tracemalloc.stop()
        last[0] = time.perf_counter()

    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    try:
        report = ingestor.ingest(paths, on_result=on_result)
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - start

    results = {Path(r.path).name: r for r in report.files}
    assert len(report.files) == len(results) == len(failing) + len(valid) + 6  # 6 corpus files unchanged

    # Each failure says why, in words a user can act on, without leaking the full path.
    for name, phrases in failing.items():
        r = results[name]
        assert r.status == "failed" and r.chunks == 0, r
        for phrase in phrases:
            assert phrase in r.error, (name, r.error)
        assert str(tmp_path) not in r.error and "Traceback" not in r.error
    # Each valid one is stored, every chunk within what the embedder reads.
    for name in valid:
        r = results[name]
        assert r.status == "added" and r.chunks > 0 and r.error is None, r
        for text in stored_chunks(store, r.path):
            assert ingestor.chunker.count_tokens(text) <= ingestor.limits.size
    for name in ("manual.docx", "deck.pptx", "prices.xlsx", "page.html", "notes.md", "legacy.txt"):
        assert results[name].status == "unchanged"

    # The zip bomb was refused from its directory, never unpacked (memory says so; no stopwatch).
    assert memory["traced_peak"] < 50 * MB, memory
    assert (memory["rss_peak_kb"] - rss_before_kb) * 1024 < 200 * MB, (memory, rss_before_kb)
    # Every failure is quick: measured against this run's own valid files, not a wall-clock limit
    # that flakes on shared cores. No failure takes longer than the slowest valid file (the
    # 200k-character line: the splitter falls back to one tokenizer call per character), and the
    # failures together take less than the valid files together.
    slowest_valid = max(times[name] for name in valid)
    for name in failing:
        if name != "report.pdf":
            assert times[name] <= slowest_valid, (name, times[name], slowest_valid)
    assert sum(times[n] for n in failing if n != "report.pdf") < sum(times[n] for n in valid), times

    # Nothing stored before is lost: same documents, same chunk counts, still complete.
    after = {d.source: (d.chunks, d.complete) for d in store.documents()}
    for source, state in before.items():
        assert after[source] == state, source
    new = {results[n].path: results[n].chunks for n in valid}
    assert set(after) == set(before) | set(new)
    assert store.count() == chunks_before + sum(new.values())
    top = store.search("Why was the warehouse in Tromsø closed?", k=1)[0]
    assert top.source == str(report_pdf) and "flooding" in top.text

    # The valid documents' text is correct and found by search.
    def top_hit(query: str, name: str):
        hits = store.search(query, k=3)
        assert hits and hits[0].source == results[name].path, (query, [(x.source, x.score) for x in hits])
        return hits[0]

    hit = top_hit("When does the harbour master in Ålesund open the office on Saturdays?", "utf16.html")
    assert UTF16_FACT in hit.text and hit.metadata.get("heading") == "Opening hours"
    hit = top_hit("What does Café Måke serve?", "cp1252.txt")
    assert CP1252_FACT in hit.text and "Ã" not in hit.text  # no mojibake
    assert "café" in top_hit("Which dessert does the café on the pier serve?", "cp1252.txt").text.lower()
    assert DOCX_FACT in top_hit("When is the fog horn compressor drained?", "valid.docx").text
    assert PDF_FACT in top_hit("When are the storm shutters closed?", "valid.pdf").text
    # 570 chunks of near-identical hash soup: Chroma's approximate (HNSW) search can miss the one
    # chunk that differs, so ask the way the chat does, with keyword fusion.
    from rag.retrieval import Retriever

    fused = Retriever(store, settings).retrieve("Where does the spare lamp room key hang?", k=3)
    assert fused[0].source == results["long_line.txt"].path and NEEDLE in fused[0].text

    # The two very long lines are stored whole: their chunks cover the text from start to end.
    for name in ("long_line.txt", "unspaced.txt"):
        text = (h / name).read_text(encoding="utf-8")
        assert covered(text, stored_chunks(store, results[name].path)), name


# ------------------------------------------------------------------ upload names

HOSTILE_NAMES = {
    "../../evil.txt": "The evil file holds the tide table for the northern skerries.",
    "..\\..\\evil_windows.txt": "The backslash file lists the buoy colours: red to port, green to starboard.",
    "/etc/passwd.txt": "The passwd note says the radio log is kept in the blue binder.",
    "C:\\Windows\\x.txt": "The Windows note says the generator is tested on the first Monday.",
    "a\x00b\nc.txt": "The control character note says the gull colony counts 312 nests.",
    "\x1b[31mred.txt": "The escape sequence note says the red sector light covers the reef.",
    "ü" * 300 + ".md": "# Umlaut\n\nThe long umlaut name note says the keeper's dog is called Fjord.",
    "....": "The dots note says the boat house door sticks in wet weather.",
}
QUESTIONS = {
    "../../evil.txt": "Where is the tide table for the northern skerries?",
    "..\\..\\evil_windows.txt": "What colours are the buoys?",
    "/etc/passwd.txt": "Where is the radio log kept?",
    "C:\\Windows\\x.txt": "When is the generator tested?",
    "a\x00b\nc.txt": "How many nests does the gull colony have?",
    "\x1b[31mred.txt": "What does the red sector light cover?",
    "ü" * 300 + ".md": "What is the keeper's dog called?",
    "....": "Which door sticks in wet weather?",
}


def is_safe_name(name: str) -> bool:
    return (
        bool(name)
        and name not in (".", "..")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and not any(unicodedata.category(ch).startswith("C") for ch in name)
        and len(name.encode("utf-8")) <= 255
    )


def test_hostile_upload_names_stay_inside_the_data_dir(settings, store, embedder, tmp_path):
    assert not settings.public
    data_dir = settings.data_dir.resolve()
    folder = data_dir / "uploads" / settings.collection
    incoming = tmp_path / "incoming"  # where a web server would have put the uploaded bytes
    incoming.mkdir()
    files = []
    for i, (name, text) in enumerate(HOSTILE_NAMES.items()):
        files.append((docgen.make_text(incoming / f"upload{i}.bin", text), name))
    bad = {  # hostile names with hostile bytes: must fail, still inside the data dir
        "../empty.txt": docgen.make_empty(incoming / "e.bin"),
        "..\\..\\junk.pdf": docgen.make_random_bytes(incoming / "r.bin"),
    }
    files += [(path, name) for name, path in bad.items()]

    # cwd is tmp_path (conftest), so "../../evil.txt" taken literally would land two levels up.
    escapes = []
    for _, name in files:
        for base in (Path.cwd(), folder, Path("/")):
            escapes.append(os.path.normpath(os.path.join(base, name)))
            escapes.append(os.path.normpath(os.path.join(base, name.replace("\\", "/"))))
    escapes = [p for p in escapes if not p.startswith(str(folder) + os.sep)]
    existed = {p for p in escapes if os.path.lexists(p)}
    outside_before = snapshot(tmp_path, skip=settings.data_dir)
    data_before = snapshot(data_dir) if data_dir.exists() else {}

    ws = Workspace(settings)
    ws._embedder = embedder
    results = ws.upload(files, session="s1", chosen=None)

    assert len(results) == len(files)
    assert snapshot(tmp_path, skip=settings.data_dir) == outside_before
    assert {p for p in escapes if os.path.lexists(p)} == existed
    new_in_data = set(snapshot(data_dir)) - set(data_before)
    allowed = ("chroma", "uploads", "keyword")  # keyword: the writer marker of this process (rag.store)
    assert all(p.startswith(allowed) for p in new_in_data), sorted(p for p in new_in_data if not p.startswith(allowed))
    uploads = {p for p in new_in_data if p.startswith("uploads" + os.sep)}
    assert all(os.path.dirname(p) in ("uploads", os.path.join("uploads", settings.collection)) for p in uploads)

    by_name = dict(zip([n for _, n in files], results))
    stored_names = set()
    for name, r in by_name.items():
        assert is_safe_name(r.path), (name, r.path)
        assert (folder / r.path).parent == folder, r.path
        if r.status == "failed":
            assert r.error and str(tmp_path) not in r.error, r
            assert not (folder / r.path).exists(), "a failed upload leaves no copy behind"
        else:
            assert r.status == "added" and r.chunks > 0, (name, r)
            assert (folder / r.path).is_file(), r.path
            stored_names.add(name)
    assert sorted(os.listdir(folder)) == sorted({r.path for r in results if r.status != "failed"})

    # Every name that keeps an extension is stored; a name of only dots has none left and fails.
    assert stored_names == {n for n in HOSTILE_NAMES if n != "...."}
    assert "unsupported file type" in by_name["...."].error
    assert "empty file (0 bytes)" in by_name["../empty.txt"].error
    assert "not a valid PDF" in by_name["..\\..\\junk.pdf"].error
    assert by_name["ü" * 300 + ".md"].path.endswith(".md")
    assert by_name["ü" * 300 + ".md"].path.startswith("üüüü")

    # The stored uploads are searchable under their safe names.
    for name in stored_names:
        hits = store.search(QUESTIONS[name], k=3)
        assert hits[0].source == by_name[name].path, (name, [(x.source, x.score) for x in hits])
        assert HOSTILE_NAMES[name].splitlines()[-1] in hits[0].text
