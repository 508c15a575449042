"""The `rag` CLI as a user sees it: exit codes, JSON shapes, human output, error messages.

Real packaged embedder, real Chroma in tmp_path, real generated documents. Most tests call
`rag.app.cli.main` in-process (the embedder loads once per process); the few marked slow run the
installed CLI in a subprocess, as a user's shell would.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import child_env, rag_cmd, rag_script
from docgen import make_empty, make_encrypted_pdf, make_image_only_pdf, make_pdf, make_random_bytes, make_text
from rag.app.cli import main

TOTAL_KEYS = {"files", "added", "unchanged", "updated", "failed", "chunks"}
FILE_KEYS = {"path", "status", "chunks", "error", "seconds", "read_seconds", "pages", "characters", "ocr_pages",
             "empty_pages", "ocr_only", "warning"}
HIT_KEYS = {"rank", "score", "source", "page", "chunk_id", "text"}


# ------------------------------------------------------------------ helpers

@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """main(argv) → (exit code, stdout, stderr)."""
    capsys.readouterr()  # drop anything printed before
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv)
    return code, json.loads(out), err


def by_name(report: dict) -> dict[str, dict]:
    return {Path(f["path"]).name: f for f in report["files"]}


def search(capsys, query: str, *extra: str, k: int = 50) -> list[dict]:
    code, hits, err = run_json(capsys, "search", query, "--json", "--k", str(k), *extra)
    assert code == 0, err
    return hits


def doc_list(capsys, *extra: str) -> list[dict]:
    code, docs, err = run_json(capsys, "docs", "list", "--json", *extra)
    assert code == 0, err
    return docs


def cli_env(data_dir: Path) -> dict[str, str]:
    return child_env(RAG_DATA_DIR=str(data_dir))


def rag_cli(args: list[str], data_dir: Path, cwd: Path, stdin: str | None = None):
    return subprocess.run(
        [*rag_cmd(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=cli_env(data_dir),
        cwd=cwd,
        timeout=300,
    )


def make_bad_files(folder: Path) -> dict[str, str]:
    """Bad files in `folder`, by name, with the phrase their failure reason must contain."""
    make_empty(folder / "empty.txt")
    make_random_bytes(folder / "random.pdf")
    make_encrypted_pdf(folder / "locked.pdf", "A secret plan.")
    make_image_only_pdf(folder / "scanned.pdf")
    make_text(folder / "data.xyz", "what is this format")
    return {
        "empty.txt": "empty file",
        "random.pdf": "not a valid PDF",
        "locked.pdf": "encrypted",
        "scanned.pdf": "no extractable text",
        "data.xyz": "unsupported file type",
    }


def make_good_files(folder: Path) -> None:
    make_text(folder / "good.md", "# Otters\n\nSea otters hold hands while they sleep so they do not drift apart.\n")
    make_pdf(folder / "good.pdf", ["The lighthouse keeper Astrid Holm painted the tower red in 1962."])


# ------------------------------------------------------------------ ingest

def test_ingest_json_adds_every_file_then_rerun_is_unchanged(corpus, data_dir, capsys):
    code, report, err = run_json(capsys, "ingest", str(corpus), "--json")
    assert code == 0, err
    assert set(report) == TOTAL_KEYS
    files = by_name(report)
    assert set(files) == {"report.pdf", "manual.docx", "deck.pptx", "prices.xlsx", "page.html",
                          "notes.md", "legacy.txt"}
    for name, f in files.items():
        assert set(f) == FILE_KEYS
        assert f["status"] == "added", (name, f)
        assert f["chunks"] > 0, (name, f)
        assert f["error"] is None and f["warning"] is None, (name, f)
        assert f["characters"] > 0 and f["seconds"] >= f["read_seconds"] >= 0, (name, f)
        assert f["ocr_pages"] == f["empty_pages"] == 0 and f["ocr_only"] is False, (name, f)
    # pages where the format has them: PDF pages, PPTX slides (the PDF has 3, the deck 2)
    assert {n: f["pages"] for n, f in files.items() if f["pages"] is not None} == {"report.pdf": 3}
    assert report["added"] == 7
    assert report["unchanged"] == report["updated"] == report["failed"] == 0
    assert report["chunks"] == sum(f["chunks"] for f in report["files"])
    assert data_dir.joinpath("chroma").is_dir()

    code, again, err = run_json(capsys, "ingest", str(corpus), "--json")
    assert code == 0, err
    assert {f["status"] for f in again["files"]} == {"unchanged"}
    assert again["unchanged"] == 7 and again["added"] == again["updated"] == again["failed"] == 0
    assert again["chunks"] == 0  # nothing embedded
    # an unchanged file still reports how many chunks it has in the store, and what reading it found
    assert {n: f["chunks"] for n, f in by_name(again).items()} == {n: f["chunks"] for n, f in files.items()}
    assert {n: f["characters"] for n, f in by_name(again).items()} == {n: f["characters"] for n, f in files.items()}


def test_ingest_human_output_one_line_per_file_and_totals(corpus, data_dir, capsys):
    bad = corpus / "broken.pdf"
    make_random_bytes(bad)
    code, out, err = run(capsys, "ingest", str(corpus))
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 8 + 1  # 8 files, then the totals line
    for line in lines[:-1]:
        status = line.split()[0]
        assert status in ("added", "failed"), line
    added = [line for line in lines if line.startswith("added")]
    assert len(added) == 7
    for line in added:  # "added   N chunks  PATH  (what reading found; seconds)"
        m = re.fullmatch(r"added +(\d+) chunks  (\S+)  \((.*\d+(?:,\d+)* chars); (\d+\.\d) s\)", line)
        assert m and int(m.group(1)) > 0 and Path(m.group(2)).is_file(), line
    pdf_line = next(line for line in added if f"{corpus / 'report.pdf'}  " in line)
    assert "(3 pages, " in pdf_line and "OCR" not in pdf_line
    [failed] = [line for line in lines if line.startswith("failed")]
    assert str(bad) in failed and "not a valid PDF" in failed
    assert lines[-1].startswith("8 files: 7 added, 0 updated, 0 unchanged, 1 failed; ")
    assert "chunks embedded into collection 'default'" in lines[-1]

    code, out, err = run(capsys, "ingest", str(corpus / "notes.md"))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[0] == "unchanged" and f"{corpus / 'notes.md'}  (" in lines[0]
    assert lines[-1].startswith("1 files: 0 added, 0 updated, 1 unchanged, 0 failed; 0 chunks")


def test_bad_files_fail_with_a_reason_and_good_ones_are_searchable(tmp_path, data_dir, capsys):
    folder = tmp_path / "batch"
    folder.mkdir()
    reasons = make_bad_files(folder)
    make_good_files(folder)

    code, report, err = run_json(capsys, "ingest", str(folder), "--json")
    assert code == 1
    assert "Traceback" not in err
    files = by_name(report)
    assert set(files) == set(reasons) | {"good.md", "good.pdf"}
    for name, phrase in reasons.items():
        assert files[name]["status"] == "failed", files[name]
        assert files[name]["chunks"] == 0
        assert phrase in files[name]["error"], files[name]
    for name in ("good.md", "good.pdf"):
        assert files[name]["status"] == "added" and files[name]["chunks"] > 0 and files[name]["error"] is None
    assert report["failed"] == 5 and report["added"] == 2

    hits = search(capsys, "Why do sea otters hold hands?", k=1)
    assert Path(hits[0]["source"]).name == "good.md" and "otters hold hands" in hits[0]["text"]
    hits = search(capsys, "Who painted the lighthouse tower red?", k=1)
    assert Path(hits[0]["source"]).name == "good.pdf" and hits[0]["page"] == 1
    assert {Path(d["source"]).name for d in doc_list(capsys)} == {"good.md", "good.pdf"}


def test_a_missing_path_fails_that_file_not_the_batch(corpus, data_dir, capsys):
    missing = corpus / "nope.pdf"
    code, report, _ = run_json(capsys, "ingest", str(missing), str(corpus / "notes.md"), "--json")
    assert code == 1
    files = by_name(report)
    assert files["nope.pdf"]["status"] == "failed" and "no such file" in files["nope.pdf"]["error"]
    assert files["notes.md"]["status"] == "added"


def test_modified_file_is_updated_and_old_text_is_gone(corpus, data_dir, capsys):
    code, _, err = run_json(capsys, "ingest", str(corpus), "--json")
    assert code == 0, err
    assert any("Puffins" in h["text"] for h in search(capsys, "Where do puffins nest?"))

    make_text(corpus / "notes.md", "# Notes\n\n## Birds\n\nGannets dive for mackerel off the western skerries.\n")
    code, report, err = run_json(capsys, "ingest", str(corpus), "--json")
    assert code == 0, err
    statuses = {name: f["status"] for name, f in by_name(report).items()}
    assert statuses.pop("notes.md") == "updated"
    assert set(statuses.values()) == {"unchanged"}
    assert report["updated"] == 1 and report["unchanged"] == 6
    assert report["chunks"] == by_name(report)["notes.md"]["chunks"] > 0

    hits = search(capsys, "Where do puffins nest?")
    assert hits, "the rest of the corpus is still searchable"
    assert not [h for h in hits if "Puffins" in h["text"]]
    assert any("Gannets" in h["text"] for h in search(capsys, "What do gannets dive for?", k=3))
    [notes] = [d for d in doc_list(capsys) if Path(d["source"]).name == "notes.md"]
    assert notes["chunks"] == by_name(report)["notes.md"]["chunks"] and notes["complete"] is True


# ------------------------------------------------------------------ search

def test_search_json_shape_and_page_of_a_pdf_fact(corpus, data_dir, capsys):
    code, _, err = run_json(capsys, "ingest", str(corpus), "--json")
    assert code == 0, err

    hits = search(capsys, "Why was the Tromsø warehouse closed?", k=3)
    assert 1 <= len(hits) <= 3
    for hit in hits:
        assert set(hit) == HIT_KEYS
        assert isinstance(hit["score"], float) and isinstance(hit["text"], str) and hit["chunk_id"]
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    top = hits[0]
    assert top["source"] == str(corpus / "report.pdf")
    assert top["page"] == 2  # 1-based
    assert "flooding" in top["text"]

    assert len(search(capsys, "ferry", k=1)) == 1


def test_search_gives_the_passages_ask_would_use(corpus, data_dir, capsys, monkeypatch):
    """`rag search` runs the chain's retrieval: hybrid by default, dense-only with RAG_HYBRID=false."""
    from rag.embeddings import make_embedder
    from rag.retrieval import Retriever
    from rag.settings import load_settings
    from rag.store import open_store

    assert run_json(capsys, "ingest", str(corpus), "--json")[0] == 0
    query = "When does the night ferry to Bodø leave from pier 4?"
    for hybrid in ("true", "false"):
        monkeypatch.setenv("RAG_HYBRID", hybrid)
        settings = load_settings()
        expected = Retriever(open_store(settings, make_embedder(settings), create=False), settings).retrieve(query, k=5)
        hits = search(capsys, query, k=5)
        assert [h["chunk_id"] for h in hits] == [h.chunk_id for h in expected]
        assert [h["score"] for h in hits] == [h.score for h in expected]
        assert any("bm25_rank" in h.metadata for h in expected) == (hybrid == "true")


def test_search_human_output(corpus, data_dir, capsys):
    code, _, err = run_json(capsys, "ingest", str(corpus), "--json")
    assert code == 0, err
    code, out, err = run(capsys, "search", "Why was the Tromsø warehouse closed?", "--k", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("1. [") and f"{corpus / 'report.pdf'} p.2" in lines[0]
    assert "flooding" in lines[1]
    assert any(line.startswith("2. [") for line in lines)


def test_search_missing_collection_exits_2_without_traceback(data_dir, capsys):
    code, out, err = run(capsys, "search", "anything", "--json")
    assert code == 2
    assert out == ""
    assert "collection 'default' does not exist" in err
    assert "Traceback" not in err
    assert err.count("\n") == 1  # one line

    code, _, err = run(capsys, "docs", "list", "--collection", "nowhere")
    assert code == 2 and "collection 'nowhere' does not exist" in err


def test_search_does_not_create_the_collection(corpus, data_dir, capsys):
    assert run(capsys, "search", "x")[0] == 2
    assert run(capsys, "search", "x")[0] == 2  # still absent: the failed search did not create it


# ------------------------------------------------------------------ docs

def test_docs_list_and_delete(corpus, data_dir, capsys):
    code, report, err = run_json(capsys, "ingest", str(corpus), "--json")
    assert code == 0, err
    chunks = {f["path"]: f["chunks"] for f in report["files"]}

    docs = doc_list(capsys)
    assert {d["source"]: d["chunks"] for d in docs} == chunks
    for d in docs:
        assert set(d) == {"doc_id", "source", "chunks", "complete", "read"} and d["complete"] is True
        assert d["read"]["characters"] > 0 and d["read"]["ocr_pages"] == 0 and not d["read"]["ocr_only"]
    [pdf] = [d for d in docs if d["source"].endswith("report.pdf")]
    assert pdf["read"]["pages"] == 3

    code, out, err = run(capsys, "docs", "list")
    assert code == 0
    chars = pdf["read"]["characters"]
    assert f"{pdf['chunks']:>6} chunks  {pdf['source']}  (3 pages, {chars:,} chars)" in out.splitlines()
    assert out.splitlines()[-1] == f"7 documents, {sum(chunks.values())} chunks in 'default'"

    code, out, err = run(capsys, "docs", "delete", pdf["source"])
    assert code == 0, err
    assert f"{pdf['chunks']} chunks removed" in out
    remaining = doc_list(capsys)
    assert pdf["source"] not in {d["source"] for d in remaining} and len(remaining) == 6
    for query in ("Why was the Tromsø warehouse closed?", "Who was the auditor?", "quarterly revenue"):
        hits = search(capsys, query)
        assert hits and pdf["source"] not in {h["source"] for h in hits}

    code, out, err = run(capsys, "docs", "delete", pdf["source"])  # already gone
    assert code == 1 and "no document" in err
    code, out, err = run(capsys, "docs", "delete", str(corpus / "never-ingested.pdf"))
    assert code == 1 and "no document" in err and "Traceback" not in err
    assert len(doc_list(capsys)) == 6


def test_docs_delete_by_relative_path_and_by_doc_id(corpus, data_dir, capsys, tmp_path):
    assert run_json(capsys, "ingest", str(corpus), "--json")[0] == 0
    docs = {Path(d["source"]).name: d for d in doc_list(capsys)}
    # cwd is tmp_path, so corpus/notes.md is the same file as the stored absolute path
    assert run(capsys, "docs", "delete", "corpus/notes.md")[0] == 0
    assert run(capsys, "docs", "delete", docs["deck.pptx"]["doc_id"])[0] == 0
    assert {Path(d["source"]).name for d in doc_list(capsys)} == set(docs) - {"notes.md", "deck.pptx"}


def test_docs_clear(corpus, data_dir, capsys):
    assert run_json(capsys, "ingest", str(corpus), "--json")[0] == 0
    code, out, _ = run(capsys, "docs", "clear")
    assert code == 0 and out.startswith("cleared 'default'")
    assert doc_list(capsys) == []
    assert search(capsys, "ferry") == []
    code, out, _ = run(capsys, "search", "ferry")
    assert code == 0 and "has no documents yet" in out


@pytest.mark.parametrize("k", ["0", "-1"])
def test_search_rejects_non_positive_k(corpus, data_dir, capsys, k):
    assert run_json(capsys, "ingest", str(corpus / "notes.md"), "--json")[0] == 0
    capsys.readouterr()
    try:
        code = main(["search", "puffins", "--json", "--k", k])
    except SystemExit as exc:  # argparse's usage error
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2 and "--k" in err


# ------------------------------------------------------------------ settings and collections

@pytest.mark.parametrize(
    "var, value",
    [("RAG_CHUNK_SIZE", "abc"), ("RAG_CHUNK_SIZE", "4"), ("RAG_K", "0"), ("RAG_COLLECTION", "x")],
)
def test_invalid_setting_exits_2_naming_it(corpus, data_dir, capsys, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    for argv in (["ingest", str(corpus), "--json"], ["search", "ferry"]):
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        assert out == ""
        assert var in err and err.startswith("error: invalid settings")
        assert "Traceback" not in err
    assert not (data_dir / "chroma").exists() or not any((data_dir / "chroma").iterdir())


def test_invalid_collection_flag_exits_2(corpus, data_dir, capsys):
    code, _, err = run(capsys, "ingest", str(corpus), "--collection", "a b", "--json")
    assert code == 2 and "collection name 'a b'" in err


def test_collections_are_separate(corpus, data_dir, capsys, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    make_good_files(other)
    assert run_json(capsys, "ingest", str(corpus), "--json")[0] == 0
    code, report, err = run_json(capsys, "ingest", str(other), "--collection", "other", "--json")
    assert code == 0, err
    assert {f["status"] for f in report["files"]} == {"added"}

    default_sources = {d["source"] for d in doc_list(capsys)}
    other_sources = {d["source"] for d in doc_list(capsys, "--collection", "other")}
    assert other_sources == {str(other / "good.md"), str(other / "good.pdf")}
    assert len(default_sources) == 7 and not default_sources & other_sources

    for query in ("sea otters", "lighthouse keeper", "Tromsø warehouse"):
        assert {h["source"] for h in search(capsys, query)} <= default_sources
        assert {h["source"] for h in search(capsys, query, "--collection", "other")} <= other_sources

    # -c works as well, and the same file can live in both collections
    code, report, _ = run_json(capsys, "ingest", str(corpus / "notes.md"), "-c", "other", "--json")
    assert code == 0 and report["files"][0]["status"] == "added"
    assert run(capsys, "docs", "delete", str(corpus / "notes.md"), "-c", "other")[0] == 0
    assert str(corpus / "notes.md") in {d["source"] for d in doc_list(capsys)}


def test_collection_from_env(corpus, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("RAG_COLLECTION", "from-env")
    code, _, _ = run(capsys, "ingest", str(corpus / "notes.md"))
    assert code == 0
    assert len(doc_list(capsys, "--collection", "from-env")) == 1
    monkeypatch.delenv("RAG_COLLECTION")
    assert run(capsys, "docs", "list")[0] == 2  # 'default' was never created


# ------------------------------------------------------------------ subprocess: the real command

@pytest.mark.slow
def test_subprocess_batch_with_a_bad_file_exits_1(tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    make_good_files(folder)
    make_random_bytes(folder / "random.pdf")
    proc = rag_cli(["ingest", str(folder), "--json"], tmp_path / "data", tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    files = by_name(json.loads(proc.stdout))
    assert files["random.pdf"]["status"] == "failed" and "not a valid PDF" in files["random.pdf"]["error"]
    assert files["good.md"]["status"] == files["good.pdf"]["status"] == "added"


@pytest.mark.slow
def test_subprocess_search_reads_queries_from_stdin(corpus, data_dir, capsys, tmp_path):
    assert run_json(capsys, "ingest", str(corpus), "--json")[0] == 0
    queries = "Why was the Tromsø warehouse closed?\n\nWhen does the night ferry to Bodø leave?\n"
    proc = rag_cli(["search", "-", "--k", "2"], data_dir, tmp_path, stdin=queries)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    first, empty, third = (json.loads(line) for line in lines)
    assert empty == []
    assert len(first) == len(third) == 2
    assert first[0]["source"] == str(corpus / "report.pdf") and first[0]["page"] == 2
    assert third[0]["source"] == str(corpus / "sub" / "page.html") and "23:40" in third[0]["text"]
    assert all(set(hit) == HIT_KEYS for hit in first + third)


@pytest.mark.slow
def test_subprocess_help(tmp_path):
    cmd = rag_script()  # the installed console script itself, not whatever `rag` is first on PATH
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=300,
                          env=cli_env(tmp_path / "data"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for word in ("ingest", "search", "docs"):
        assert word in proc.stdout
    proc = subprocess.run([*cmd, "search", "--help"], capture_output=True, text=True, timeout=300,
                          env=cli_env(tmp_path / "data"), cwd=tmp_path)
    assert proc.returncode == 0 and "--k" in proc.stdout and "--collection" in proc.stdout
    assert not (tmp_path / "data").exists()  # --help touches no store
