"""LangChain's own standard test suites (the `langchain-tests` package) run against our two
LangChain components: the llama.cpp chat model (rag.llm.local.LocalChatModel, on the packaged
SmolLM2, run by xllamacpp) and the int8 ONNX embeddings (rag.onnx_embedding.OnnxEmbeddings).

The chat model's unit suite constructs the model without loading it (fast tier); everything that
loads a model is marked slow. Capabilities the model does not have (tools, structured output,
JSON mode, images...) are declared off, so the suites skip those tests."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from rag.llm.local import LocalChatModel
from rag.llm.packaged import resolve_local_model


def _chat_params() -> dict:
    # xllamacpp: the runtime a default install has (RAG_LOCAL_RUNTIME=auto picks llama-cpp only
    # where its compiled extra is installed)
    return {"model_path": str(resolve_local_model("smollm2")), "model_name": "smollm2", "runtime": "xllamacpp"}


class _LocalChatCapabilities:
    @property
    def chat_model_class(self) -> type[LocalChatModel]:
        return LocalChatModel

    @property
    def chat_model_params(self) -> dict:
        return _chat_params()

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return False  # streamed answers (and template-less models) carry no token counts

    @property
    def supports_model_override(self) -> bool:
        return False


class TestLocalChatModelUnit(_LocalChatCapabilities, ChatModelUnitTests):
    pass


@pytest.mark.slow
class TestLocalChatModelIntegration(_LocalChatCapabilities, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict:
        # Short answers at temperature 0: the suite asks dozens of questions of a CPU model.
        return {**_chat_params(), "temperature": 0.0, "max_tokens": 24}


def _embedding_params() -> dict:
    from transformers import AutoTokenizer

    from rag.embeddings import packaged_model_path
    from rag.onnx_embedding import int8_model

    folder = packaged_model_path()
    return {
        "onnx_path": int8_model(folder),  # exported and cached on first use
        "tokenizer": AutoTokenizer.from_pretrained(str(folder)),
        "max_length": 256,
        "batch_size": 32,
        "pooling": "mean",
        "normalize": True,
    }


class _OnnxEmbeddingsSetup:
    @property
    def embeddings_class(self):
        from rag.onnx_embedding import OnnxEmbeddings

        return OnnxEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return _embedding_params()


@pytest.mark.slow
class TestOnnxEmbeddingsUnit(_OnnxEmbeddingsSetup, EmbeddingsUnitTests):
    pass


@pytest.mark.slow
class TestOnnxEmbeddingsIntegration(_OnnxEmbeddingsSetup, EmbeddingsIntegrationTests):
    pass
