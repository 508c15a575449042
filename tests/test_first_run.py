"""A newcomer's first run, as printed: each slow first-use step announces itself in one line on
stderr ("Preparing the embedding model (once, ~20 s)…"), no library warning or progress bar
gets through, and later runs print nothing extra. A fresh cache folder stands for a fresh
machine (XDG_CACHE_HOME); the commands run as subprocesses, as a user runs them."""

from __future__ import annotations

import subprocess

import pytest

from conftest import child_env, rag_cmd

FACT = "The warehouse in Tromsø was closed in March because of flooding."


def _rag(args, tmp_path, cache):
    env = child_env(XDG_CACHE_HOME=str(cache), RAG_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run([*rag_cmd(), *args], capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
def test_first_run_prints_one_line_per_step_and_later_runs_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text(FACT + "\n", encoding="utf-8")
    cache = tmp_path / "cache"

    first = _rag(["ingest", str(tmp_path / "notes.txt")], tmp_path, cache)
    assert first.stderr == "Preparing the embedding model (once, ~20 s)…\n"
    assert "1 added" in first.stdout

    search = _rag(["search", "Why was the warehouse closed?"], tmp_path, cache)
    assert search.stderr == "" and "Tromsø" in search.stdout

    ask = _rag(["ask", "Why was the warehouse closed?"], tmp_path, cache)
    assert ask.stderr == "Preparing the language model (once, ~5 s)…\n"
    assert "flood" in ask.stdout.lower()

    again = _rag(["ask", "Why was the warehouse closed?"], tmp_path, cache)
    assert again.stderr == ""
    ingest_again = _rag(["ingest", str(tmp_path / "notes.txt")], tmp_path, cache)
    assert ingest_again.stderr == "" and "1 unchanged" in ingest_again.stdout
