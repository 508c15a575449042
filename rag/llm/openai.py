"""The OpenAI-compatible backend: OpenAI itself, llama.cpp's server, vLLM, Ollama, LM Studio...

`build` returns LangChain's ChatOpenAI; `error_message` turns the `openai` client's exceptions
(ChatOpenAI raises them unchanged) into one line naming the setting to fix.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from langchain_core.language_models.chat_models import BaseChatModel

from rag.errors import ConfigError, one_line
from rag.settings import Settings

DEFAULT_URL = "https://api.openai.com/v1"


def build(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

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


def describe(settings: Settings) -> str:
    return f"openai: {settings.openai_model} at {settings.openai_base_url or DEFAULT_URL}"


def error_message(exc: Exception, settings: Settings) -> Optional[str]:
    """One line for an `openai` client exception; None for anything else (not ours to explain)."""
    try:
        import httpx
        import openai
    except ImportError:
        return None
    url = settings.openai_base_url or DEFAULT_URL
    where = f"OPENAI_BASE_URL={url}" if settings.openai_base_url else f"{url} (OPENAI_BASE_URL not set)"
    if isinstance(exc, httpx.HTTPError):  # a stream broken mid-answer is not wrapped by the client
        return f"the LLM server at {where} failed: {type(exc).__name__}: {one_line(exc)}"
    if not isinstance(exc, openai.OpenAIError):
        return None
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"the OpenAI-compatible server at {where} did not answer within "
            f"RAG_LLM_TIMEOUT={settings.llm_timeout:g} s"
        )
    if isinstance(exc, openai.APIConnectionError):
        reason = one_line(_root_cause(exc))  # e.g. "[Errno 111] Connection refused"
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
        return f"the LLM server at {url} failed: {one_line(exc)}"
    return f"OpenAI client error ({where}): {one_line(exc)}"


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
            return one_line(err["message"], 160)
        if isinstance(err, str):
            return one_line(err, 160)
    return one_line(getattr(exc, "message", None) or exc, 160)
