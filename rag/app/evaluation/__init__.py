"""`rag eval`: retrieval and answer quality on a question set whose answers are known.

datasets.py  SQuAD JSON / JSONL loading, sampling, the documents to ingest
scoring.py   answer-in-chunk matching, recall@k / MRR, SQuAD exact match and F1, refusal rates
running.py   ingest into a throwaway collection, retrieve (and answer) every question
report.py    EvalReport, the typed result (`to_json()` is the JSON report)
plotting.py  the recall@k PNG
"""

from rag.app.evaluation.datasets import Dataset, Question, collection_name, load_dataset, sample, write_documents
from rag.app.evaluation.plotting import save_plot
from rag.app.evaluation.report import EvalReport
from rag.app.evaluation.running import (
    EvalOptions,
    evaluate,
    ingest_dataset,
    with_precomputed_queries,
)
from rag.app.evaluation.scoring import (
    RetrievalScores,
    contains,
    contains_answer,
    exact_match,
    f1,
    first_rank,
    normalize,
    score_answers,
)

__all__ = [
    "Dataset", "EvalOptions", "EvalReport", "Question", "RetrievalScores", "collection_name", "contains",
    "contains_answer", "evaluate", "exact_match", "f1", "first_rank", "ingest_dataset", "load_dataset",
    "normalize", "sample", "save_plot", "score_answers", "with_precomputed_queries", "write_documents",
]
