"""The typed result of `rag eval`; `to_json()` is the JSON report the CLI writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag.app.evaluation.scoring import RetrievalScores


@dataclass
class EvalReport:
    dataset: str
    format: str  # "squad" or "jsonl"
    questions: dict[str, int]  # total, evaluated, answerable, unanswerable, skipped
    corpus: dict[str, Any]  # documents, extra_paths, chunks, ingest (the ingest totals)
    settings: dict[str, Any]  # the retrieval-relevant settings of the run
    retrieval: RetrievalScores
    answers: dict[str, Any] | None  # None without --answers (see scoring.score_answers)
    seconds: dict[str, float]  # ingest, retrieval, answers
    per_question: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None  # where the CLI wrote the JSON report
    plot: str | None = None  # where the CLI wrote the recall@k plot

    @property
    def mode(self) -> str:
        """'hybrid', 'dense', with ' + MMR' when MMR was on."""
        return ("hybrid" if self.settings["hybrid"] else "dense") + (" + MMR" if self.settings["mmr"] else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "format": self.format,
            "questions": self.questions,
            "corpus": self.corpus,
            "settings": self.settings,
            "retrieval": self.retrieval.to_json(),
            "answers": self.answers,
            "seconds": self.seconds,
            "per_question": self.per_question,
            "report": self.report,
            "plot": self.plot,
        }
