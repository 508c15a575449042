"""The LLM that writes answers: a packaged GGUF model through llama-cpp-python (default: Gemma 3
270M base), or any OpenAI-compatible server.

    packaged.py  which GGUF RAG_LOCAL_MODEL means; Gemma assembled into the cache once
    local.py     LocalChatModel (llama.cpp in-process) and the LRU of loaded models
    openai.py    ChatOpenAI for OpenAI and compatible servers, and its error messages

`make_llm` picks the backend from `BACKENDS` by RAG_LLM, importing it only then; a missing
package is a ConfigError naming what to install. `llm_errors` turns a backend's own exceptions
into an `LLMError` whose one-line message names the setting to fix; the local model raises
LLMError itself. Each backend module has `build(settings)`, `describe(settings)` and
`error_message(exc, settings)`.
"""

from __future__ import annotations

import importlib
import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError, LLMError, RagError
from rag.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel


@dataclass(frozen=True)
class Backend:
    module: str  # has build(settings), describe(settings), error_message(exc, settings)
    needs: str  # the import the backend cannot work without
    missing: str  # what to tell the user when it is not installed


BACKENDS: dict[str, Backend] = {
    "local": Backend(
        "rag.llm.local", "llama_cpp",
        "RAG_LLM=local needs llama-cpp-python: pip install llama-cpp-python (or set RAG_LLM=openai)",
    ),
    "openai": Backend(
        "rag.llm.openai", "langchain_openai",
        "RAG_LLM=openai needs the langchain-openai package: pip install langchain-openai",
    ),
}


def _backend(settings: Settings, *, check: bool = False):
    entry = BACKENDS.get(settings.llm)
    if entry is None:
        raise ConfigError(f"RAG_LLM={settings.llm}: unknown backend (use one of: {', '.join(BACKENDS)})")
    if check and importlib.util.find_spec(entry.needs) is None:
        raise ConfigError(entry.missing)
    return importlib.import_module(entry.module)


def make_llm(settings: Settings) -> "BaseChatModel":
    """The configured chat model: local GGUF (loaded now) or OpenAI-compatible."""
    return _backend(settings, check=True).build(settings)


def describe_llm(settings: Settings) -> str:
    """One line for humans: which model answers, and where. Loads nothing."""
    return _backend(settings).describe(settings)


@contextmanager
def llm_errors(settings: Settings):
    """Turn a backend failure inside the block into an LLMError with a one-line, actionable message.

    RagErrors pass through unchanged; so does anything the configured backend does not recognise
    as its own (bugs keep their type and traceback).
    """
    try:
        yield
    except RagError:
        raise
    except Exception as exc:
        message = _backend(settings).error_message(exc, settings)
        if message is None:
            raise
        raise LLMError(message) from exc


def __getattr__(name: str) -> Any:
    """The backends' public names, imported on first use (rag.llm itself stays light)."""
    homes = {
        "LocalChatModel": "rag.llm.local",
        "LoadedModels": "rag.llm.local",
        "load_local_model": "rag.llm.local",
        "PACKAGED_MODELS": "rag.llm.packaged",
        "cache_dir": "rag.llm.packaged",
        "resolve_local_model": "rag.llm.packaged",
    }
    if name in homes:
        return getattr(importlib.import_module(homes[name]), name)
    raise AttributeError(f"module 'rag.llm' has no attribute {name!r}")
