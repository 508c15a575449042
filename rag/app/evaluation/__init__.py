"""`rag eval`: retrieval and answer quality on a question set whose answers are known.

datasets.py  SQuAD JSON / JSONL loading, sampling, the documents to ingest
scoring.py   answer-in-chunk matching, recall@k / MRR, SQuAD exact match and F1, refusal rates
running.py   ingest into a throwaway collection, retrieve (and answer) every question
report.py    EvalReport, the typed result (`to_json()` is the JSON report)
plotting.py  the recall@k PNG
"""

from rag.app.evaluation.datasets import load_dataset
from rag.app.evaluation.plotting import save_plot
from rag.app.evaluation.report import EvalReport
from rag.app.evaluation.running import EvalOptions, evaluate

__all__ = ["EvalOptions", "EvalReport", "evaluate", "load_dataset", "save_plot"]
