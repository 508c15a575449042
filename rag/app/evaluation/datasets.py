"""Evaluation datasets: SQuAD JSON or JSONL question sets with known answers, and their documents.

- SQuAD JSON (`{"data": [{"paragraphs": [{"context", "qas": [{"question", "answers":
  [{"text"}], "is_impossible"}]}]}]}`): each article's contexts become one document;
  `is_impossible: true` makes a question unanswerable; a question with neither an answer text nor
  `is_impossible` has nothing to match and is skipped (counted as `skipped`).
- JSONL, one object per line: `question` (text), `answers` (list of strings), `answerable`
  (optional, default true), `context` (optional). Each distinct context becomes one document; a
  file without any contexts needs the documents to search passed as `--docs PATH`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rag.errors import DatasetError


@dataclass(frozen=True)
class Question:
    text: str
    answers: tuple[str, ...]  # gold answer strings, stripped, deduplicated
    answerable: bool = True


@dataclass
class Dataset:
    path: Path
    format: str  # "squad" or "jsonl"
    questions: list[Question]
    documents: list[str]  # texts to ingest: one per SQuAD article, one per distinct JSONL context
    skipped: int = 0  # SQuAD questions with no answer text and not marked impossible





def load_dataset(path: str | Path) -> Dataset:
    """A SQuAD JSON or JSONL dataset; DatasetError naming the file (and line/entry) if malformed."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read it: {exc}") from None
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        dataset = _load_jsonl(path, text)
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data" and text.lstrip().startswith("{"):
                dataset = _load_jsonl(path, text)  # JSONL under a .json name
            else:
                raise DatasetError(f"{path}: not valid JSON: {exc}") from None
        else:
            dataset = _load_squad(path, doc)
    if not any(q.answerable for q in dataset.questions):
        raise DatasetError(f"{path}: no answerable questions with an answer string to evaluate")
    return dataset


def _expect(value: Any, kind: type, path: Path, where: str) -> Any:
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        wanted = {list: "a list", dict: "an object", str: "a non-empty string", bool: "true or false"}[kind]
        raise DatasetError(f"{path}: {where} must be {wanted}")
    return value


def _answer_texts(raw: Iterable[Any], path: Path, where: str) -> tuple[str, ...]:
    texts = []
    for i, answer in enumerate(raw):
        text = answer.get("text") if isinstance(answer, dict) else answer
        if not isinstance(text, str):
            raise DatasetError(f"{path}: {where}[{i}] must be a string or an object with a 'text' string")
        texts.append(text.strip())
    return tuple(dict.fromkeys(t for t in texts if t))


def _load_squad(path: Path, doc: Any) -> Dataset:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DatasetError(
            f"{path}: not a SQuAD file (no top-level 'data' list); JSONL datasets need a .jsonl name"
        )
    questions, documents, skipped = [], [], 0
    for a, article in enumerate(doc["data"]):
        where = f"data[{a}]"
        paragraphs = _expect(_expect(article, dict, path, where).get("paragraphs"), list, path, f"{where}.paragraphs")
        contexts = []
        for p, paragraph in enumerate(paragraphs):
            pw = f"{where}.paragraphs[{p}]"
            _expect(paragraph, dict, path, pw)
            contexts.append(_expect(paragraph.get("context"), str, path, f"{pw}.context"))
            for q, qa in enumerate(_expect(paragraph.get("qas", []), list, path, f"{pw}.qas")):
                qw = f"{pw}.qas[{q}]"
                text = _expect(_expect(qa, dict, path, qw).get("question"), str, path, f"{qw}.question")
                answers = _answer_texts(_expect(qa.get("answers", []), list, path, f"{qw}.answers"), path, f"{qw}.answers")
                impossible = bool(qa.get("is_impossible", False))
                if impossible:
                    questions.append(Question(text.strip(), (), answerable=False))
                elif answers:
                    questions.append(Question(text.strip(), answers))
                else:
                    skipped += 1
        if contexts:
            documents.append("\n\n".join(contexts))
    return Dataset(path, "squad", questions, documents, skipped)


def _load_jsonl(path: Path, text: str) -> Dataset:
    questions, contexts = [], {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: {where}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        _expect(row, dict, path, where)
        question = _expect(row.get("question"), str, path, f"{where}: 'question'")
        answers = _answer_texts(_expect(row.get("answers", []), list, path, f"{where}: 'answers'"), path, f"{where}: 'answers'")
        answerable = _expect(row.get("answerable", True), bool, path, f"{where}: 'answerable'")
        if answerable and not answers:
            raise DatasetError(
                f"{path}: {where}: an answerable question needs at least one string in 'answers' "
                '(or "answerable": false)'
            )
        if row.get("context") is not None:
            contexts[_expect(row["context"], str, path, f"{where}: 'context'")] = None
        questions.append(Question(question.strip(), answers if answerable else (), answerable))
    return Dataset(path, "jsonl", questions, list(contexts))


def sample(questions: list[Question], n: int | None) -> list[Question]:
    """n questions evenly spaced through the set (all when n is None or not smaller): every
    article is represented, and the same n gives the same questions on every run."""
    if n is None or n >= len(questions):
        return list(questions)
    step = max(1, len(questions) // n)
    return questions[::step][:n]


def write_documents(texts: list[str], folder: Path) -> int:
    """One text file per document, NNN.txt; other files in `folder` are removed. Returns the count."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {f"{i:03d}.txt" for i in range(len(texts))}
    for old in folder.iterdir():
        if old.is_file() and old.name not in names:
            old.unlink()
    for i, text in enumerate(texts):
        target = folder / f"{i:03d}.txt"
        data = text.encode("utf-8")
        if not target.exists() or target.read_bytes() != data:  # unchanged files keep their mtime
            target.write_bytes(data)
    return len(texts)


def collection_name(dataset_path: Path) -> str:
    """A valid Chroma collection name from the dataset's file name: covid-qa, xquad.en."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(dataset_path).stem).strip("._-")
    return (name or "eval").ljust(3, "0")[:63].rstrip("._-")
