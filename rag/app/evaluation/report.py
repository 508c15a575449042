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

    def summary(self, name: str, k: int) -> list[str]:
        """The lines `rag eval` prints."""
        out: list[str] = []
        q, corpus = self.questions, self.corpus
        out.append(
            f"{name}: {q['evaluated']} of {q['total']} questions ({q['answerable']} answerable), "
            f"{corpus['documents']} documents, {corpus['chunks']} chunks"
        )
        out.append(f"retrieval ({self.mode}, k={k}) over {self.retrieval.questions} answerable questions:")
        out.append(f"  recall@1   {_fmt(self.retrieval.recall_by_k[0])}")
        out.append(f"  recall@{k:<3} {_fmt(self.retrieval.recall_by_k[-1])}")
        out.append(f"  MRR@{k:<6} {_fmt(self.retrieval.mrr)}")
        a = self.answers
        if a:
            out.append(f"answers ({a['model']}, temperature 0) to {a['questions']} questions:")
            out.append(f"  exact match       {_fmt(a['exact_match'])}   (over {a['answered']} answerable answered)")
            out.append(f"  F1                {_fmt(a['f1'])}")
            out.append(f"  refused           {_fmt(a['refusal_rate'])}")
            out.append(f"  false refusals    {_fmt(a['false_refusal_rate'])}   (answerable refused)")
            out.append(f"  correct refusals  {_fmt(a['correct_refusal_rate'])}   (unanswerable refused)")
            e = a.get("evidence_first")
            if e:
                ok, no = e["answerable_status"], e["unanswerable_status"]
                out.append(f"  answer contains gold {_fmt(e['answer_contains_gold'])}   quote contains gold {_fmt(e['quote_contains_gold'])}"
                      f"   EM {_fmt(e['exact_match'])}   F1 {_fmt(e['f1'])}   (all answerable)")
                for label, r in (("answerable  ", ok), ("unanswerable", no)):
                    out.append(f"  {label} answered {_fmt(r['answered'])}  unsure {_fmt(r['unsure'])}  refused {_fmt(r['refused'])}")
                out.append(f"  time to first token p50 {_fmt(e['first_token_p50'])} s   p90 {_fmt(e['first_token_p90'])} s"
                      f"   seconds per answer {_fmt(e['seconds_per_answer'])}")
        return out


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
