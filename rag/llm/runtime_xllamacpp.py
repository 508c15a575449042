"""The default local runtime: llama.cpp through xllamacpp (MIT), a prebuilt CPU wheel.

Nothing is compiled at install time. The wheel's llama.cpp is built for portable x86-64 (up to
AVX2, no AVX-512 or AMX kernels), so llama.cpp's AMX crash (rag/llm/amx.py) cannot happen here.

xllamacpp runs llama.cpp's own server engine in-process: `Server.handle_chat_completions` takes
and returns OpenAI-shaped dicts. The engine also listens on a loopback port (it cannot be turned
off); every model gets a random API key nobody is told, so that port answers nothing but
/health. Streaming is a callback on the calling thread; `stream` runs it on a worker thread and
hands chunks over a queue. Closing the iterator makes the callback return True at the next
token, which ends the generation there (Stop in the web app, an answer cut short).
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
from typing import Any, Iterator

from rag.llm import PromptTooLong
from rag.llm.gguf import has_chat_template

_END = object()


class RuntimeFailure(RuntimeError):
    """llama.cpp's server answered a request with an error."""


def _raise_for(payload: Any) -> None:
    error = payload.get("error") if isinstance(payload, dict) else None
    if error is None:
        return
    if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
        raise PromptTooLong(int(error.get("n_prompt_tokens") or 0), int(error.get("n_ctx") or 0))
    message = error.get("message") if isinstance(error, dict) else error
    raise RuntimeFailure(str(message))


class XllamacppModel:
    """One GGUF model loaded by xllamacpp, one request at a time (the caller holds a lock)."""

    runtime = "xllamacpp"

    def __init__(self, path: str, n_ctx: int, plain_template: str):
        import xllamacpp

        self.has_template = has_chat_template(path)  # ValueError: not a (complete) GGUF
        params = xllamacpp.CommonParams()
        params.model.path = path
        params.n_ctx = n_ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = os.cpu_count() or 1
        params.verbosity = 0  # llama.cpp's log lines: none (errors come back as values)
        params.warmup = False
        params.fit_params = False  # keep n_ctx as asked
        params.cache_ram_mib = 0  # no host-memory prompt cache beyond the slot's own KV cache
        params.endpoint_slots = False
        params.ui = False
        params.hostnames = ["127.0.0.1"]
        params.api_keys = [secrets.token_urlsafe(32)]  # the loopback port serves no one
        if not self.has_template:
            params.chat_template = plain_template
        self._server = xllamacpp.Server(params)  # RuntimeError when llama.cpp cannot load it
        self.address = self._server.listening_address  # locked by the key above
        # Deleting a Server whose engine has not yet taken a request can hang for good (its
        # main loop starts after the destructor's "exit" was sent; seen with xllamacpp
        # 2026.10 when the LRU evicted a model loaded a moment before). One token through the
        # engine makes sure the loop runs: ~0.1 s at load.
        _raise_for(self._server.handle_completions({"prompt": "Hi", "max_tokens": 1, "temperature": 0}))

    def chat(self, request: dict) -> dict:
        result = self._server.handle_chat_completions({**request, "stream": False})
        _raise_for(result)
        return result

    def stream(self, request: dict) -> Iterator[dict]:
        """OpenAI chat.completion.chunk dicts as generated; close() stops the generation."""
        chunks: queue.Queue = queue.Queue()
        cancel = threading.Event()

        def on_chunk(chunk) -> bool:
            chunks.put(chunk)
            return cancel.is_set()

        def generate() -> None:
            try:
                result = self._server.handle_chat_completions({**request, "stream": True}, on_chunk)
                if result is not None:
                    chunks.put(result)
            except BaseException as exc:  # handed to the consumer
                chunks.put(exc)
            finally:
                chunks.put(_END)

        worker = threading.Thread(target=generate, name="xllamacpp-stream", daemon=True)
        worker.start()
        try:
            while True:
                item = chunks.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                _raise_for(item)
                yield item
        finally:
            cancel.set()
            worker.join()  # at the next token: the model is free when close() returns

    def close(self) -> None:
        """Free the weights and context (xllamacpp frees them when the Server is deallocated)."""
        self._server = None


def load(path: str, n_ctx: int, plain_template: str) -> XllamacppModel:
    return XllamacppModel(path, n_ctx, plain_template)


def system_info() -> str:
    import xllamacpp

    return xllamacpp.get_system_info()


def version() -> str:
    import xllamacpp

    return f"xllamacpp {xllamacpp.__version__}"
