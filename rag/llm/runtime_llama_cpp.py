"""The optional local runtime: llama.cpp through llama-cpp-python (`pip install ".[llama-cpp]"`).

llama-cpp-python has no prebuilt wheel on PyPI: pip compiles llama.cpp (~10 min on 2 cores,
needs a C compiler and CMake) with -march=native, so it can be faster on CPUs with AVX-512 than
the portable xllamacpp wheel, and on CPUs with AMX it needs rag/llm/amx.py's guard.
Chosen with RAG_LOCAL_RUNTIME=llama-cpp.
"""

from __future__ import annotations

import ctypes
import os
import re
from typing import Iterator

from rag.llm import PromptTooLong
from rag.llm.amx import avoid_amx_kernels

_quiet_callback = None  # keep the ctypes callback alive


def _silence(llama_cpp) -> None:
    """Route llama.cpp's own log lines (e.g. 'llama_kv_cache_iswa: ...') to nowhere.

    verbose=False is not enough: some lines are logged at a level llama-cpp-python lets through.
    Errors still surface as Python exceptions.
    """
    global _quiet_callback
    if _quiet_callback is not None:
        return
    import llama_cpp._logger  # noqa: F401  (installs its callback on import; ours replaces it)

    @llama_cpp.llama_log_callback
    def _quiet(level, text, user_data):  # pragma: no cover - called from C
        return None

    llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
    _quiet_callback = _quiet


def _too_long(exc: Exception) -> Exception:
    m = re.search(r"Requested tokens \((\d+)\) exceed context window of (\d+)", str(exc))
    return PromptTooLong(int(m.group(1)), int(m.group(2))) if m else exc


class LlamaCppModel:
    """One GGUF model loaded by llama-cpp-python (not thread-safe: the caller holds a lock)."""

    runtime = "llama-cpp"

    def __init__(self, path: str, n_ctx: int, plain_template: str):
        import llama_cpp

        _silence(llama_cpp)
        avoid_amx_kernels()  # else "Illegal instruction" on CPUs with AMX (rag/llm/amx.py)
        self.llama = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=os.cpu_count() or 1, verbose=False)
        self.has_template = bool(self.llama.metadata.get("tokenizer.chat_template"))
        if not self.has_template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llama = self.llama
            bos = llama.detokenize([llama.token_bos()], special=True).decode("utf-8", "ignore")
            eos = llama.detokenize([llama.token_eos()], special=True).decode("utf-8", "ignore")
            llama.chat_handler = Jinja2ChatFormatter(plain_template, eos_token=eos, bos_token=bos).to_chat_handler()

    def chat(self, request: dict) -> dict:
        try:
            return self.llama.create_chat_completion(**request, stream=False)
        except ValueError as exc:
            raise _too_long(exc) from exc

    def stream(self, request: dict) -> Iterator[dict]:
        try:
            stream = self.llama.create_chat_completion(**request, stream=True)
        except ValueError as exc:
            raise _too_long(exc) from exc
        try:
            while True:
                try:
                    part = next(stream)
                except StopIteration:
                    return
                except ValueError as exc:
                    raise _too_long(exc) from exc
                yield part
        finally:
            stream.close()  # stops generation when the answer ended early or the caller left

    def close(self) -> None:
        self.llama.close()


def load(path: str, n_ctx: int, plain_template: str) -> LlamaCppModel:
    return LlamaCppModel(path, n_ctx, plain_template)


def system_info() -> str:
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "ignore")


def version() -> str:
    import llama_cpp

    return f"llama-cpp-python {llama_cpp.__version__}"
