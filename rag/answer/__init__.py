"""The answer path: a LangChain Runnable from a question (and history) to a cited `Answer`.

`build(settings)` is the one place the chain is assembled; every face (CLI, web, /v1, eval) uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from rag.answer.chain import QAChain
    from rag.settings import Settings
    from rag.store import DocumentStore


def build(settings: "Settings", *, stores: "Sequence[DocumentStore] | None" = None,
          llm: "BaseChatModel | None" = None) -> "QAChain":
    """The chain for these settings: over `stores` (default: the configured collection; several are
    searched as one) with `llm` (default: the configured backend)."""
    from rag.answer.chain import QAChain
    from rag.retrieval import MergedRetriever, Retriever

    if stores is None:
        from rag.embeddings import make_embedder
        from rag.store import open_store

        stores = [open_store(settings, make_embedder(settings), create=False)]
    if llm is None:
        from rag.llm import make_llm

        llm = make_llm(settings)
    retrievers = [Retriever(store, settings) for store in stores]
    retriever = retrievers[0] if len(retrievers) == 1 else MergedRetriever(retrievers)
    return QAChain(retriever, llm, settings)
