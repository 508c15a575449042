"""The LLM that writes answers: a packaged GGUF model run in-process by llama.cpp (default: Gemma 3
270M base), or any OpenAI-compatible server.

    packaged.py           which GGUF RAG_LOCAL_MODEL means; Gemma assembled into the cache once
    local.py              LocalChatModel (llama.cpp in-process) and the LRU of loaded models
    runtime_xllamacpp.py  llama.cpp through xllamacpp, a prebuilt wheel (default runtime)
    runtime_llama_cpp.py  llama.cpp through llama-cpp-python, an optional extra that compiles
    gguf.py               reads a GGUF's metadata (has it a chat template?) without loading it
    openai.py             ChatOpenAI for OpenAI and compatible servers, and its error messages

`make_llm` picks the backend from `BACKENDS` by RAG_LLM, importing it only then; a missing
package is a ConfigError naming what to install. `llm_errors` turns a backend's own exceptions
into an `LLMError` whose one-line message names the setting to fix; the local model raises
LLMError itself. Each backend module has `build(settings)`, `describe(settings)` and
`error_message(exc, settings)`. The local backend runs on one of `RUNTIMES`
(RAG_LOCAL_RUNTIME), each a module with `load(path, n_ctx, plain_template)`, `version()` and
`system_info()`, likewise imported only when used.
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
    needs: str  # the import the backend cannot work without ("": checked by the backend)
    missing: str  # what to tell the user when it is not installed


BACKENDS: dict[str, Backend] = {
    "local": Backend("rag.llm.local", "", ""),  # needs its RUNTIMES entry: local.build checks
    "openai": Backend(
        "rag.llm.openai", "langchain_openai",
        "RAG_LLM=openai needs the langchain-openai package: pip install langchain-openai",
    ),
}


#: Local runtimes (RAG_LOCAL_RUNTIME): the same Backend shape; `module` has load(path, n_ctx,
#: plain_template) -> a model with has_template, chat(request), stream(request) and close().
RUNTIMES: dict[str, Backend] = {
    "xllamacpp": Backend(
        "rag.llm.runtime_xllamacpp", "xllamacpp",
        "RAG_LOCAL_RUNTIME=xllamacpp needs the xllamacpp package (a prebuilt wheel): "
        "pip install xllamacpp (or set RAG_LOCAL_RUNTIME=llama-cpp, or RAG_LLM=openai)",
    ),
    "llama-cpp": Backend(
        "rag.llm.runtime_llama_cpp", "llama_cpp",
        'RAG_LOCAL_RUNTIME=llama-cpp needs the llama-cpp extra: pip install -e ".[llama-cpp]" '
        "(compiles llama.cpp: ~10 min, a C compiler and CMake), or unset RAG_LOCAL_RUNTIME",
    ),
}


class PromptTooLong(Exception):
    """A runtime's "the prompt does not fit the context window"."""

    def __init__(self, tokens: int, n_ctx: int):
        super().__init__(f"the prompt needs {tokens} tokens; the context window holds {n_ctx}")
        self.tokens, self.n_ctx = tokens, n_ctx


def resolve_runtime(name: str) -> str:
    """RAG_LOCAL_RUNTIME as a key of RUNTIMES: 'auto' is llama-cpp where its extra is installed
    (compiled for this CPU: prefill ~1.5x faster on AVX-512, bench/runtime_compare.py), else
    xllamacpp (a prebuilt wheel, installed by default)."""
    if name != "auto":
        return name
    return "llama-cpp" if importlib.util.find_spec(RUNTIMES["llama-cpp"].needs) else "xllamacpp"


def runtime(name: str, *, check: bool = True):
    """The runtime module for RAG_LOCAL_RUNTIME=name; ConfigError naming the extra if missing."""
    name = resolve_runtime(name)
    entry = RUNTIMES.get(name)
    if entry is None:
        raise ConfigError(f"RAG_LOCAL_RUNTIME={name}: unknown runtime (use one of: {', '.join(RUNTIMES)})")
    if check and importlib.util.find_spec(entry.needs) is None:
        raise ConfigError(entry.missing)
    return importlib.import_module(entry.module)


def _backend(settings: Settings, *, check: bool = False):
    entry = BACKENDS.get(settings.llm)
    if entry is None:
        raise ConfigError(f"RAG_LLM={settings.llm}: unknown backend (use one of: {', '.join(BACKENDS)})")
    if check and entry.needs and importlib.util.find_spec(entry.needs) is None:
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
