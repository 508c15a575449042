"""The only fake LLMs in the suite, both real LangChain chat models: for tests that must prove the
model is never called, or must control the exact words it writes (the real packaged models
cannot be made to write a given citation)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


class NeverCalled(BaseChatModel):
    """Fails the test if the chain calls the LLM."""

    def _generate(self, *args: Any, **kwargs: Any):
        raise AssertionError("the LLM was called")

    @property
    def _llm_type(self) -> str:
        return "never-called"


def scripted_llm(*replies: str) -> GenericFakeChatModel:
    """A chat model that answers with these replies, in order, streamed word by word."""
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


# --------------------------------------------------------------------------------------------
# test-mending (issue 17)


class SlowScriptedLLM(GenericFakeChatModel):
    """Like `scripted_llm`, but each streamed piece arrives `delay` seconds after the last: lets a
    browser test watch an answer grow without depending on how fast a real model is today."""

    delay: float = 0.15

    def _stream(self, *args: Any, **kwargs: Any):
        import time

        for chunk in super()._stream(*args, **kwargs):
            time.sleep(self.delay)
            yield chunk


def slow_scripted_llm(*replies: str, delay: float = 0.15) -> SlowScriptedLLM:
    return SlowScriptedLLM(messages=iter([AIMessage(content=r) for r in replies]), delay=delay)


class FailingOnceLLM(GenericFakeChatModel):
    """Raises `error` on its first call, then answers with the scripted replies: a backend hiccup."""

    error: Exception
    failed: bool = False

    def _stream(self, *args: Any, **kwargs: Any):
        if not self.failed:
            self.failed = True
            raise self.error
        yield from super()._stream(*args, **kwargs)

    def _generate(self, *args: Any, **kwargs: Any):
        if not self.failed:
            self.failed = True
            raise self.error
        return super()._generate(*args, **kwargs)


def failing_once_llm(error: Exception, *replies: str) -> FailingOnceLLM:
    return FailingOnceLLM(messages=iter([AIMessage(content=r) for r in replies]), error=error)
