"""`rag eval` on tiny datasets the tests write: real packaged embedder, real Chroma in a temporary
folder, the real packaged SmolLM2 for --answers (set explicitly: faster than the default Gemma 3
270M). Most tests call `rag.app.cli.main` in-process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import child_env, rag_cmd

from rag.app.cli import main
from rag.app.evaluation.datasets import Question, sample
from rag.app.evaluation.scoring import RetrievalScores
from rag.answer.chain import REFUSAL

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPORT_KEYS = {
    "dataset", "format", "questions", "corpus", "settings", "retrieval", "answers", "seconds",
    "per_question", "report", "plot",
}
RETRIEVAL_KEYS = {"k", "questions", "recall_at_1", "recall_at_k", "mrr", "recall_by_k"}
ANSWER_KEYS = {
    "model", "questions", "answerable", "unanswerable", "answered", "exact_match", "f1", "contains",
    "all_answerable", "refusal_rate", "false_refusal_rate", "correct_refusal_rate", "seconds_per_question",
    "evidence_first",
}

PARAGRAPHS = {
    "lighthouse": "The Skarvøy lighthouse was built in 1887 by the engineer Olav Brekke. Its first-order "
    "Fresnel lens was ground in Paris and shipped north by steamer.",
    "bakery": "The Hollow Oak bakery bakes its sourdough rye in a wood-fired oven at 280 degrees. "
    "The starter is fed with dark rye flour every morning at five.",
    "ferry": "The night ferry to Bodø leaves from pier 4 at 23:40 and carries up to 90 cars. "
    "Tickets are sold at the harbour office, which closes at 22:00.",
    "birds": "Atlantic puffins nest on the eastern cliffs of Rundøy from April to August, digging "
    "burrows in the turf above the ledges where kittiwakes breed.",
}
LIGHTHOUSE_Q = "Who built the Skarvøy lighthouse?"
# (paragraph, question, answers, is_impossible). Loaded in PARAGRAPHS order, the impossible one is
# third: --limit 2 (every second question) takes the lighthouse one and it.
QUESTIONS = [
    ("lighthouse", LIGHTHOUSE_Q, ["Olav Brekke"], False),
    ("bakery", "At what temperature is the sourdough rye baked?", ["280 degrees"], False),
    ("ferry", "Who won the football World Cup final in 1998?", [], True),
    ("birds", "Where do puffins nest on Rundøy?", ["the eastern cliffs", "eastern cliffs of Rundøy"], False),
    ("ferry", "When does the night ferry to Bodø leave?", ["23:40"], False),
    ("ferry", "What colour are the tickets?", [], False),  # no answer, not impossible: skipped
]


def write_squad(path: Path) -> Path:
    data = []
    for name, context in PARAGRAPHS.items():
        qas = [
            {"id": f"q{i}", "question": q, "is_impossible": impossible,
             "answers": [{"text": a, "answer_start": 0} for a in answers]}
            for i, (p, q, answers, impossible) in enumerate(QUESTIONS) if p == name
        ]
        data.append({"title": name, "paragraphs": [{"context": context, "qas": qas}]})
    path.write_text(json.dumps({"version": "test", "data": data}), encoding="utf-8")
    return path


def write_jsonl(path: Path, with_context: bool = True) -> Path:
    lines = []
    for p, q, answers, impossible in QUESTIONS[:5]:
        row = {"question": q, "answers": answers, "answerable": not impossible}
        if with_context:
            row["context"] = PARAGRAPHS[p]
        lines.append(json.dumps(row, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_eval(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def squad(tmp_path) -> Path:
    return write_squad(tmp_path / "tiny-squad.json")


@pytest.fixture
def own_tempdir(tmp_path, monkeypatch) -> Path:
    """tempfile's folder for this test only, to see that the throwaway collection is deleted."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def assert_real_png(path: Path) -> None:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width, _ = imread(path).shape
    assert width >= 300 and height >= 200


def check_retrieval(retrieval: dict, k: int) -> None:
    assert set(retrieval) == RETRIEVAL_KEYS and retrieval["k"] == k
    curve = retrieval["recall_by_k"]
    assert len(curve) == k and all(0.0 <= r <= 1.0 for r in curve)
    assert all(a <= b for a, b in zip(curve, curve[1:])), curve
    assert retrieval["recall_at_1"] == curve[0] and retrieval["recall_at_k"] == curve[-1]
    assert curve[0] <= retrieval["mrr"] <= curve[-1]


# ------------------------------------------------------------------ retrieval


def test_squad_report_plot_and_a_question_found_at_rank_1(squad, tmp_path, own_tempdir, monkeypatch, capsys):
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "mydata"))
    report_path, plot_path = tmp_path / "out" / "r.json", tmp_path / "out" / "recall.png"
    code, out, err = run_eval(capsys, str(squad), "--k", "3", "--json", "--report", str(report_path), "--plot", str(plot_path))
    assert code == 0, err
    report = json.loads(out)
    assert report == json.loads(report_path.read_text(encoding="utf-8"))
    assert set(report) == REPORT_KEYS and report["format"] == "squad" and report["answers"] is None
    assert report["questions"] == {"total": 5, "evaluated": 5, "answerable": 4, "unanswerable": 1, "skipped": 1}
    assert report["corpus"]["documents"] == 4 and report["corpus"]["ingest"]["added"] == 4
    check_retrieval(report["retrieval"], 3)
    assert report["retrieval"]["questions"] == 4
    ranks = {row["question"]: row["rank"] for row in report["per_question"]}
    assert ranks[LIGHTHOUSE_Q] == 1
    assert ranks["Who won the football World Cup final in 1998?"] is None  # unanswerable: not scored
    assert_real_png(plot_path)
    # throwaway: nothing left in the temp folder, the configured data folder never created
    assert list(own_tempdir.iterdir()) == []
    assert not (tmp_path / "mydata").exists()


def test_jsonl_with_contexts_human_output(tmp_path, capsys):
    dataset = write_jsonl(tmp_path / "tiny.jsonl")
    code, out, err = run_eval(capsys, str(dataset), "--k", "2")
    assert code == 0, err
    assert "recall@1" in out and "recall@2" in out and "MRR@2" in out
    report = json.loads((tmp_path / "eval-report.json").read_text(encoding="utf-8"))
    assert report["format"] == "jsonl" and report["corpus"]["documents"] == 4  # distinct contexts
    assert report["questions"]["unanswerable"] == 1
    check_retrieval(report["retrieval"], 2)
    assert_real_png(tmp_path / "eval-recall.png")


def test_jsonl_without_contexts_needs_docs_then_searches_them(tmp_path, capsys):
    dataset = write_jsonl(tmp_path / "bare.jsonl", with_context=False)
    code, out, err = run_eval(capsys, str(dataset))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "bare.jsonl" in err and "--docs" in err

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in PARAGRAPHS.items():
        (docs / f"{name}.md").write_text(f"# {name}\n\n{text}\n", encoding="utf-8")
    code, out, err = run_eval(capsys, str(dataset), "--docs", str(docs), "--k", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["corpus"]["documents"] == 0 and report["corpus"]["ingest"]["added"] == 4
    assert {row["question"]: row["rank"] for row in report["per_question"]}[LIGHTHOUSE_Q] == 1


def test_data_dir_keeps_the_collection_and_a_rerun_embeds_nothing(squad, tmp_path, capsys):
    keep = tmp_path / "keep"
    args = (str(squad), "--data-dir", str(keep), "--json", "--k", "2")
    code, out, err = run_eval(capsys, *args)
    assert code == 0, err
    first = json.loads(out)
    code, out, err = run_eval(capsys, *args)
    assert code == 0, err
    second = json.loads(out)
    assert second["corpus"]["ingest"]["unchanged"] == 4 and second["corpus"]["ingest"]["chunks"] == 0
    assert second["retrieval"] == first["retrieval"]
    assert (keep / "chroma").is_dir()


def test_limit_takes_an_evenly_spaced_sample(squad, capsys):
    code, out, err = run_eval(capsys, str(squad), "--limit", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["questions"]["evaluated"] == 2
    assert [row["question"] for row in report["per_question"]] == [LIGHTHOUSE_Q, QUESTIONS[2][1]]


# ------------------------------------------------------------------ malformed input


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("broken.json", '{"data": [', "not valid JSON"),
        ("notsquad.json", '{"questions": []}', "not a SQuAD file"),
        ("nocontext.json", '{"data": [{"paragraphs": [{"qas": []}]}]}', "data[0].paragraphs[0].context"),
        ("badanswers.json", '{"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q?", "answers": "x"}]}]}]}', "answers must be a list"),
        ("empty.json", '{"data": []}', "no answerable questions"),
        ("badline.jsonl", '{"question": "a?", "answers": ["b"]}\n{"question": ', "line 2"),
        ("noquestion.jsonl", '{"answers": ["b"]}\n', "line 1: 'question'"),
        ("noanswer.jsonl", '{"question": "a?", "answers": []}\n', "line 1: an answerable question needs"),
        ("badflag.jsonl", '{"question": "a?", "answers": ["b"], "answerable": "yes"}\n', "'answerable' must be true or false"),
    ],
)
def test_malformed_dataset_is_one_line_naming_the_file(tmp_path, capsys, name, content, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code, out, err = run_eval(capsys, str(path))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(path) in err and expected in err, err
    assert not (tmp_path / "eval-report.json").exists()


def test_missing_dataset_and_missing_docs(tmp_path, capsys):
    code, _, err = run_eval(capsys, str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json: no such file" in err and err.count("\n") == 1
    dataset = write_jsonl(tmp_path / "bare.jsonl", with_context=False)
    code, _, err = run_eval(capsys, str(dataset), "--docs", str(tmp_path / "gone"))
    assert code == 2 and "--docs" in err and "gone" in err and err.count("\n") == 1


# ------------------------------------------------------------------ pure parts


def test_scores_from_ranks():
    scores = RetrievalScores.from_ranks([1, 3, None, 2], k=3)
    assert scores.recall_by_k == [0.25, 0.5, 0.75]
    assert scores.mrr == pytest.approx((1 + 1 / 3 + 1 / 2) / 4)


def test_sample_is_evenly_spaced_and_deterministic():
    questions = [Question(f"q{i}", ("a",)) for i in range(10)]
    assert [q.text for q in sample(questions, 3)] == ["q0", "q3", "q6"]
    assert sample(questions, None) == questions and sample(questions, 50) == questions


# ------------------------------------------------------------------ slow: the LLM, a subprocess


@pytest.mark.slow
def test_answers_with_the_packaged_small_model(squad, monkeypatch, capsys):
    monkeypatch.setenv("RAG_LOCAL_MODEL", "smollm2")
    monkeypatch.setenv("RAG_MAX_ANSWER_TOKENS", "24")
    code, out, err = run_eval(capsys, str(squad), "--answers", "--limit", "2", "--k", "2", "--json")
    assert code == 0, err
    answers = json.loads(out)["answers"]
    assert set(answers) == ANSWER_KEYS and "SmolLM2" in answers["model"]
    assert answers["questions"] == 2 and answers["answerable"] == 1 and answers["unanswerable"] == 1
    rows = {r["question"]: r for r in json.loads(out)["per_question"]}
    assert all(isinstance(r["answer"], str) and isinstance(r["refused"], bool) for r in rows.values())
    # The World Cup question is near nothing in the corpus: refused by score, before any LLM call,
    # whatever the model would say. The lighthouse question's outcome is the model's.
    impossible = rows["Who won the football World Cup final in 1998?"]
    assert impossible["refused"] is True and impossible["answer"] == REFUSAL
    assert answers["correct_refusal_rate"] == 1.0
    lighthouse = rows[LIGHTHOUSE_Q]
    answered = 0 if lighthouse["refused"] else 1
    assert answers["answered"] == answered
    assert answers["false_refusal_rate"] == 1.0 - answered
    assert answers["refusal_rate"] == (1 + (1 - answered)) / 2
    for key in ("exact_match", "f1", "contains"):  # None only when the answerable one was refused
        assert (answers[key] is None) == (answered == 0)
        assert answers[key] is None or 0.0 <= answers[key] <= 1.0
        assert 0.0 <= answers["all_answerable"][key] <= 1.0
    words = " ".join(re.findall(r"\w+", lighthouse["answer"].lower()))
    contains = float(answered == 1 and "olav brekke" in words)
    assert answers["all_answerable"]["contains"] == contains
    # The evidence-first block agrees with the rows: each question's status counted once.
    evidence = answers["evidence_first"]
    assert evidence["unanswerable_status"] == {"answered": 0.0, "unsure": 0.0, "refused": 1.0}
    assert evidence["answerable_status"][lighthouse["status"]] == 1.0
    assert sum(evidence["answerable_status"].values()) == 1.0
    assert evidence["answer_contains_gold"] == float("olav brekke" in words)


@pytest.mark.slow
def test_the_command_in_a_subprocess(squad, tmp_path):
    proc = subprocess.run(
        [*rag_cmd(), "eval", str(squad), "--k", "2"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "recall@1" in proc.stdout and "MRR@2" in proc.stdout
    assert (tmp_path / "eval-report.json").is_file()
    assert_real_png(tmp_path / "eval-recall.png")
