"""`rag doctor`: versions, models, data folders and an LLM probe, each check a line that says ok
or FAIL, exit code 1 when one failed; quick enough to be the first thing a user runs."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import rag.llm as rag_llm
from conftest import child_env, rag_cmd
from rag.app.cli import main
from rag.llm import Backend


def _doctor(capsys, *args: str) -> tuple[int, dict]:
    code = main(["doctor", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _checks(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_without_the_probe_it_reports_versions_models_and_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    started = time.monotonic()
    code, report = _doctor(capsys, "--no-probe")
    assert time.monotonic() - started < 10  # no model is loaded
    assert code == 0 and report["ok"]
    versions = report["versions"]
    assert versions["groundwork-rag"] and versions["xllamacpp"]  # the default runtime is installed
    checks = _checks(report)
    assert str(tmp_path / "data") in checks["data folder"]["detail"]
    assert "not created yet" in checks["data folder"]["detail"]
    assert "embedded Chroma" in checks["store"]["detail"]
    assert "not prepared yet" in checks["embedder"]["detail"]  # a fresh cache
    assert "not assembled yet" in checks["model gemma3-270m"]["detail"]
    assert "llm" not in checks
    assert not (tmp_path / "data").exists()  # the doctor creates nothing


def test_a_missing_model_file_fails_with_the_setting_to_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_LOCAL_MODEL", str(tmp_path / "nope.gguf"))
    code, report = _doctor(capsys)
    assert code == 1 and not report["ok"]
    llm = _checks(report)["llm"]
    assert not llm["ok"] and "RAG_LOCAL_MODEL" in llm["detail"] and "no such file" in llm["detail"]


def test_a_runtime_that_is_not_installed_fails_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_LOCAL_RUNTIME", "llama-cpp")
    entry = rag_llm.RUNTIMES["llama-cpp"]
    monkeypatch.setitem(rag_llm.RUNTIMES, "llama-cpp", Backend(entry.module, "no_such_module_27", entry.missing))
    code, report = _doctor(capsys)
    assert code == 1
    runtime = _checks(report)["runtime"]
    assert not runtime["ok"] and '.[llama-cpp]' in runtime["detail"]


@pytest.mark.slow
def test_the_probe_loads_the_model_and_gets_an_answer_in_seconds(tmp_path):
    env = child_env(RAG_DATA_DIR=str(tmp_path / "data"), RAG_LOCAL_MODEL="smollm2", RAG_LOCAL_RUNTIME="xllamacpp")
    started = time.monotonic()
    proc = subprocess.run([*rag_cmd(), "doctor"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("groundwork-rag ") and "xllamacpp" in lines[1]
    llm = next(line for line in lines if line.split()[1:2] == ["llm"])
    assert llm.startswith("ok") and "SmolLM2" in llm and "paris" in llm.lower()
    assert next(line for line in lines if " runtime " in line).startswith("ok")
    assert lines[-1] == "all checks passed"
    assert elapsed < 60, elapsed  # a few seconds on an idle machine; bounded loosely (shared cores)
