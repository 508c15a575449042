"""Commands that need no model load none; `rag ask` says it is searching; a busy port is one line.

In-process tests make loading the embedder fail the test, so "does not load the model" is what
is checked, not a timing; the subprocess tests check the user's view (one line, no traceback,
within a bound) and bench/cli_latency.py prints the timings.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rag.embeddings
from docgen import make_text
from rag.app.cli import main
from rag.app.terminal import Waiting, stream_answer
from rag.answer.chain import QAChain
from rag.schema import Answer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    return path


def _no_model(monkeypatch):
    def fail(settings):
        raise AssertionError("the embedding model was loaded")

    monkeypatch.setattr(rag.embeddings, "make_embedder", fail)


def test_docs_list_and_delete_load_no_model(tmp_path, data_dir, capsys, monkeypatch):
    doc = make_text(tmp_path / "notes.md", "# Birds\n\nPuffins nest on the eastern cliffs.\n")
    assert main(["ingest", str(doc)]) == 0
    _no_model(monkeypatch)
    capsys.readouterr()
    assert main(["docs", "list"]) == 0
    assert "notes.md" in capsys.readouterr().out
    assert main(["docs", "delete", str(doc)]) == 0
    assert "1 chunks removed" in capsys.readouterr().out
    assert main(["docs", "list"]) == 0
    assert "0 documents" in capsys.readouterr().out


def test_missing_files_are_reported_without_loading_the_model(tmp_path, data_dir, capsys, monkeypatch):
    _no_model(monkeypatch)
    capsys.readouterr()
    assert main(["ingest", str(tmp_path / "missing.pdf"), str(tmp_path / "also-missing.md")]) == 1
    out = capsys.readouterr().out
    assert out.count("file not found") == 2
    assert "2 files: 0 added, 0 updated, 0 unchanged, 2 failed" in out


class FakeTerminal(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class ScriptedChain(QAChain):
    """The real chain's Reply over scripted steps (no retriever, no model)."""

    def __init__(self, seen: list):
        self.seen = seen

    def _steps(self, question, history, k, config):
        self.seen.append("stream started")
        yield "Every "
        yield "Tuesday."
        yield Answer("Every Tuesday.")


def test_waiting_note_shows_until_the_first_token_on_a_terminal_only(capsys):
    terminal = FakeTerminal(tty=True)
    seen: list = []
    answer = stream_answer(ScriptedChain(seen), "q", [], None, Waiting(stream=terminal))
    assert answer.answer == "Every Tuesday."
    written = terminal.getvalue()
    n = len("searching…")
    assert written == "searching…" + "\b" * n + " " * n + "\b" * n  # shown, then erased in place
    assert capsys.readouterr().out == "Every Tuesday.\n"

    piped = FakeTerminal(tty=False)
    stream_answer(ScriptedChain(seen), "q", [], None, Waiting(stream=piped))
    assert piped.getvalue() == ""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env_path = str(ROOT)
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env_path, env.get("PYTHONPATH")]))
    env["RAG_DATA_DIR"] = str(cwd / "data")
    return subprocess.run([sys.executable, "-m", "rag.app", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_serve_on_a_busy_port_is_one_line_naming_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        proc = _cli("serve", "--port", str(port), cwd=tmp_path)
        seconds = time.monotonic() - started
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--port" in lines[0] and str(port) in lines[0], lines
    print(f"\nbusy port reported in {seconds:.2f} s: {lines[0]}")
