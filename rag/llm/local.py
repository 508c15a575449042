"""The local backend: a GGUF model run in-process by llama.cpp, as a LangChain chat model.

llama.cpp runs through one of rag.llm.RUNTIMES (RAG_LOCAL_RUNTIME): xllamacpp, a prebuilt wheel
(default), or llama-cpp-python, an optional extra that compiles at install. Both take and give
OpenAI-shaped chat dicts; everything below is the same for either.

A GGUF with a chat template (SmolLM2) is prompted with it. One without (Gemma 3 270M base, the
default) would get a runtime's fallback template (ChatML or "llama-2" [INST]); a base model does
better with a plain-text prompt ending in "Answer:" that stops at the first blank line, so that
is what it gets.

Loaded models are kept in a small LRU (`LOADED`, two models by default): loading a third closes
the least recently used one, which frees its weights and context. A chat model whose llama.cpp
model was closed loads it again on its next call.

Failures of llama.cpp itself become `LLMError`s here, at the call, with a one-line message
naming RAG_CONTEXT_WINDOW or RAG_LOCAL_MODEL.
"""

from __future__ import annotations

import atexit
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from rag.errors import ConfigError, LLMError, one_line
from rag.llm import PromptTooLong, resolve_runtime, runtime
from rag.llm.packaged import model_name, resolve_local_model
from rag.settings import Settings

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForLLMRun

#: Prompt for GGUF models without a chat template (base models): the conversation as plain
#: text, ending in "Answer:". Stops at the first blank line or a new question.
PLAIN_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}Answer: {{ m['content'] }}\n\n"
    "{% else %}{{ m['content'] }}\n\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}Answer:{% endif %}"
)
PLAIN_STOP = ["\n\n", "\nQuestion:", "\nQ:", "\nUser:"]
DEFAULT_RUNTIME = "auto"  # see rag.llm.resolve_runtime


# --------------------------------------------------------------------------------------------
# llama.cpp: loading, quietly, at most a few models at a time


@dataclass
class Loaded:
    model: Any  # a runtime's model: has_template, chat(request), stream(request), close()
    has_template: bool
    lock: threading.Lock = field(default_factory=threading.Lock)  # one generation at a time
    closed: bool = False


def _load(runtime_name: str, path: str, n_ctx: int) -> Loaded:
    module = runtime(runtime_name)
    try:
        model = module.load(path, n_ctx, PLAIN_TEMPLATE)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ConfigError(
            f"RAG_LOCAL_MODEL={path}: llama.cpp could not load it ({one_line(exc)}); is it a "
            f"complete GGUF file of an architecture this runtime ({runtime_name}) supports?"
        ) from None
    return Loaded(model, model.has_template)


class LoadedModels:
    """The llama.cpp models in memory, keyed by (runtime, file, n_ctx): at most `size`, least
    recently used closed first (its memory is freed; a generation in progress finishes before)."""

    def __init__(self, size: int = 2):
        self.size = size
        self._models: OrderedDict[tuple[str, str, int], Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, n_ctx: int, runtime_name: str = DEFAULT_RUNTIME) -> Loaded:
        key = (resolve_runtime(runtime_name), str(Path(path).resolve()), n_ctx)
        with self._lock:
            loaded = self._models.get(key)
            if loaded is not None:
                self._models.move_to_end(key)
                return loaded
            while len(self._models) >= self.size:
                _, old = self._models.popitem(last=False)
                _close(old)
            loaded = self._models[key] = _load(*key)
            return loaded

    def keys(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._models)

    def clear(self) -> None:
        with self._lock:
            while self._models:
                _close(self._models.popitem(last=False)[1])


def _close(loaded: Loaded) -> None:
    with loaded.lock:  # waits for a generation in progress
        loaded.closed = True
        loaded.model.close()


#: The process's loaded local models (the web app serves at most two different ones at once).
LOADED = LoadedModels(size=2)
# Closed before the interpreter tears down the runtimes' module globals, which their
# destructors need.
atexit.register(LOADED.clear)


def load_local_model(path: Path, n_ctx: int, runtime_name: str = DEFAULT_RUNTIME) -> Loaded:
    """The loaded model for (runtime, path, n_ctx), loaded once per process while it stays in LOADED."""
    return LOADED.get(path, n_ctx, runtime_name)


# --------------------------------------------------------------------------------------------
# the LangChain chat model over llama.cpp


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
    return "".join(parts)


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, ChatMessage) and message.role in ("system", "user", "assistant"):
        return message.role
    raise ValueError(f"LocalChatModel cannot send a {type(message).__name__} to a local model")


class LocalChatModel(BaseChatModel):
    """A GGUF model run in-process by llama.cpp (through `runtime`), as a LangChain chat model."""

    model_path: str
    model_name: str = "local"
    runtime: str = DEFAULT_RUNTIME  # a key of rag.llm.RUNTIMES (RAG_LOCAL_RUNTIME)
    setting: str = ""  # what RAG_LOCAL_MODEL said (named in error messages); default: model_path
    n_ctx: int = 4096
    temperature: float = 0.1
    max_tokens: int = 256
    stop: Optional[list[str]] = None

    _loaded: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_path": self.model_path,
            "runtime": self.runtime,
            "n_ctx": self.n_ctx,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def load(self) -> "LocalChatModel":
        """Load the model now (once per process while it stays loaded) rather than on the first call."""
        if self._loaded is None or self._loaded.closed:
            self._loaded = load_local_model(Path(self.model_path), self.n_ctx, self.runtime)
        return self

    @contextmanager
    def _using(self) -> Iterator[Loaded]:
        """The loaded model, open, with its lock held (reloaded if the LRU closed it meanwhile)."""
        while True:
            loaded = self.load()._loaded
            with loaded.lock:
                if not loaded.closed:
                    yield loaded
                    return

    def _error(self, exc: Exception) -> LLMError:
        if isinstance(exc, PromptTooLong):
            return LLMError(
                f"the prompt needs {exc.tokens} tokens but RAG_CONTEXT_WINDOW={self.n_ctx}: "
                "raise RAG_CONTEXT_WINDOW or retrieve less (RAG_K, RAG_CHUNK_SIZE)"
            )
        text = one_line(exc)
        return LLMError(
            f"the local model (local: {self.model_name}) failed: {text} "
            f"(check RAG_LOCAL_MODEL={self.setting or self.model_path} and RAG_CONTEXT_WINDOW={self.n_ctx})"
        )

    def _request(self, messages: list[BaseMessage], stop: Optional[list[str]], **kwargs) -> dict:
        stops = list(stop or self.stop or [])
        request = {
            "messages": [{"role": _role(m), "content": _text(m.content)} for m in messages],
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
        }
        if stops:
            request["stop"] = stops
        return request

    def _pieces(self, request: dict) -> Iterator[tuple[str, Optional[str]]]:
        """(text, finish_reason) as generated. Leading whitespace is dropped; for a model without
        a chat template, PLAIN_STOP ends the answer, but only once it has begun (base models
        often open with a blank line, which as a plain stop would give an empty answer)."""
        with self._using() as loaded:
            soft = [] if loaded.has_template else PLAIN_STOP
            pending, started = "", False
            stream = loaded.model.stream(request)
            try:
                while True:
                    try:
                        part = next(stream)
                    except StopIteration:
                        return
                    except Exception as exc:  # llama.cpp refused the request or failed while generating
                        raise self._error(exc) from exc
                    choice = part["choices"][0]
                    token = (choice.get("delta") or {}).get("content") or ""
                    if not started:
                        token = token.lstrip()
                        started = bool(token)
                    pending += token
                    hits = [pending.find(s) for s in soft if s in pending]
                    if hits:
                        yield pending[: min(hits)], None
                        yield "", "stop"
                        return
                    keep = _stop_prefix_len(pending, soft)  # may be the start of a stop
                    emit, pending = pending[: len(pending) - keep], pending[len(pending) - keep :]
                    if emit:
                        yield emit, None
                    if choice.get("finish_reason"):
                        yield pending, choice["finish_reason"]
                        return
            finally:
                stream.close()  # stops generation when the answer ended early or the caller left

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, **kwargs)
        metadata: dict[str, Any] = {"model_name": self.model_name}
        result = None
        with self._using() as loaded:
            if loaded.has_template:
                try:
                    result = loaded.model.chat(request)
                except Exception as exc:
                    raise self._error(exc) from exc
        if result is not None:
            choice = result["choices"][0]
            text, finish = (choice["message"].get("content") or "").lstrip(), choice.get("finish_reason")
            usage = result.get("usage") or {}
            metadata["token_usage"] = usage
            usage_metadata = {
                "input_tokens": usage.get("prompt_tokens", 0),
                "output_tokens": usage.get("completion_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            }
        else:  # streamed underneath, to stop at the soft stops
            parts, finish = [], None
            for piece, reason in self._pieces(request):
                parts.append(piece)
                finish = reason or finish
            text, usage_metadata = "".join(parts), None
        message = AIMessage(
            content=text,
            response_metadata={**metadata, "finish_reason": finish},
            usage_metadata=usage_metadata,
        )
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info={"finish_reason": finish})],
            llm_output=metadata,
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, **kwargs)
        for piece, finish in self._pieces(request):
            if piece:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                if run_manager:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk
            if finish:
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        response_metadata={"finish_reason": finish, "model_name": self.model_name},
                    ),
                    generation_info={"finish_reason": finish},
                )


def _stop_prefix_len(text: str, stops: list[str]) -> int:
    """Length of the longest end of text that is the beginning of one of stops."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best


# --------------------------------------------------------------------------------------------
# the backend interface (see rag.llm.BACKENDS)


def build(settings: Settings) -> LocalChatModel:
    """The configured local model, loaded now."""
    runtime(settings.local_runtime)  # ConfigError naming the extra to install, before any work
    path = resolve_local_model(settings.local_model)
    model = LocalChatModel(
        model_path=str(path),
        runtime=settings.local_runtime,
        model_name=model_name(settings.local_model),
        setting=settings.local_model,
        n_ctx=settings.context_window,
        temperature=settings.temperature,
        max_tokens=settings.max_answer_tokens,
    )
    return model.load()


def describe(settings: Settings) -> str:
    return f"local: {model_name(settings.local_model)}"


def error_message(exc: Exception, settings: Settings) -> str | None:
    """llama.cpp failures are turned into LLMErrors by LocalChatModel itself: nothing left here."""
    return None
