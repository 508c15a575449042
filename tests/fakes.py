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
