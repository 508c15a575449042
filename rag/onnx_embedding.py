"""A sentence-transformers folder run as an int8 ONNX Runtime model: the default embedder.

Why: on a 2-core CPU, embedding is where ingestion spends its time. The PyTorch model is
exported to ONNX once, from the local folder (no download). ONNX Runtime's transformer
optimizer then fuses attention, GELU and layer norms, and the weights are quantized to int8
(dynamic, per channel: this CPU has AVX-512 VNNI). The result is cached under
~/.cache/groundwork-rag/embedders and loads without importing torch. bench/README.md gives
the measured speed-up and the recall@4 it keeps against fp32.

Only BERT-style encoders with mean or CLS pooling are supported (all-MiniLM-L6-v2 among
them). Anything else gets a ConfigError pointing at RAG_EMBEDDING_BACKEND=torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.cache import cache_root as cache_root_dir
from rag.cache import preparing
from rag.errors import ConfigError

#: Export recipes, each cached apart: 2 keeps the feed-forward output projections in fp32; 3
#: quantizes every MatMul (see _export: 1.5x the speed, recall in bench/README.md). A new recipe gets a
#: new number, so cached models are rebuilt. RAG_EMBEDDING_INT8_RECIPE chooses (default 2).
EXPORT_VERSION = 2
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def cache_root() -> Path:
    return cache_root_dir() / "embedders"


def _fingerprint(model_dir: Path, version: int = EXPORT_VERSION) -> str:
    """Identifies the model's files by name, size and config contents (not by path)."""
    digest = hashlib.sha256(f"v{version}".encode())
    for path in sorted(model_dir.rglob("*")):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".bin", ".txt"}:
            digest.update(str(path.relative_to(model_dir)).encode())
            digest.update(str(path.stat().st_size).encode())
            if path.suffix == ".json":
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _pooling(model_dir: Path) -> tuple[str, bool]:
    """('mean' or 'cls', normalize?) from the folder's modules.json and pooling config."""
    modules_file = model_dir / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.exists() else []
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    unsupported = [k for k in kinds if k not in {"Transformer", "Pooling", "Normalize"}]
    if unsupported:
        raise ConfigError(
            f"RAG_EMBEDDING_BACKEND=onnx-int8 cannot run {model_dir} (module {unsupported[0]}); "
            "set RAG_EMBEDDING_BACKEND=torch"
        )
    mode = "mean"
    for m in modules:
        if m.get("type", "").endswith("Pooling"):
            config = json.loads((model_dir / m["path"] / "config.json").read_text())
            if config.get("pooling_mode_cls_token"):
                mode = "cls"
            elif not config.get("pooling_mode_mean_tokens", True):
                raise ConfigError(
                    f"RAG_EMBEDDING_BACKEND=onnx-int8 supports mean or CLS pooling only ({model_dir}); "
                    "set RAG_EMBEDDING_BACKEND=torch"
                )
    return mode, "Normalize" in kinds


def int8_model(model_dir: Path, version: int = EXPORT_VERSION) -> Path:
    """The cached int8 ONNX file for model_dir, exported on first use (`version`: the recipe)."""
    target = cache_root() / _fingerprint(model_dir, version) / "model-int8.onnx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        preparing("the embedding model", 20)
        try:
            with _quiet_libraries():
                _export(model_dir, target, ffn_out_fp32=version < 3)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"could not export {model_dir} to ONNX ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); set RAG_EMBEDDING_BACKEND=torch"
            ) from None
    return target


def _export(model_dir: Path, target: Path, ffn_out_fp32: bool = False) -> None:
    """fp32 export, fusion, int8 quantization; the result is renamed into place atomically.

    Every MatMul is quantized. Keeping the feed-forward output projections in fp32 (recipe 2,
    `ffn_out_fp32`) raised the mean cosine to the fp32 vectors from 0.994 to 0.997 on COVID-QA
    text, but those six MatMuls were 39% of the run time (ONNX Runtime's profile, batch 32 x 256
    tokens): quantizing them embeds 1.5x faster, and recall@4 stays within a point (bench/README.md).
    """
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["an example", "another example sentence"], padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32, fused, int8 = (Path(tmp) / n for n in ("fp32.onnx", "fused.onnx", "int8.onnx"))
        axes = {0: "batch", 1: "sequence"}
        with torch.no_grad():
            torch.onnx.export(
                LastHiddenState(model),
                tuple(sample[name] for name in _INPUTS),
                str(fp32),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: axes for name in (*_INPUTS, "last_hidden_state")},
                opset_version=17,
                dynamo=False,
            )
        optimized = optimizer.optimize_model(
            str(fp32),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=1,
        )
        optimized.save_model_to_file(str(fused))
        quantize_dynamic(
            str(fused),
            str(int8),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=_after_gelu(optimized.model) if ffn_out_fp32 else [],
            extra_options={"DefaultTensorType": 1},  # FLOAT, for outputs of fused ops
        )
        os.replace(int8, target)


@contextmanager
def _quiet_libraries():
    """No warnings, log lines or progress bars from torch, transformers and onnxruntime while the
    model is exported (a TracerWarning, an onnx UserWarning, a "Loading weights" bar, and
    quantize_dynamic's notes on the root logger): the user was told what is happening."""
    import logging

    from transformers.utils import logging as transformers_logging

    loggers = [logging.getLogger(), logging.getLogger("onnxruntime")]
    levels = [log.level for log in loggers]
    bars = transformers_logging.is_progress_bar_enabled()
    verbosity = transformers_logging.get_verbosity()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for log in loggers:
                log.setLevel(logging.ERROR)
            transformers_logging.disable_progress_bar()
            transformers_logging.set_verbosity_error()
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
        if bars:
            transformers_logging.enable_progress_bar()
        transformers_logging.set_verbosity(verbosity)


def _after_gelu(graph_model) -> list[str]:
    """The feed-forward output projections (the MatMuls reading a GELU): fp32 in recipe 2.

    GELU outputs have the widest range in a BERT layer, so quantizing them per batch costs the
    most accuracy of any MatMul (see _export for what keeping them in fp32 costs).
    """
    gelu_outputs = {out for node in graph_model.graph.node if "Gelu" in node.op_type for out in node.output}
    return [node.name for node in graph_model.graph.node if node.op_type == "MatMul" and set(node.input) & gelu_outputs]


class OnnxEmbeddings(Embeddings):
    """LangChain Embeddings over an ONNX encoder: tokenize, run, pool, normalize."""

    def __init__(self, onnx_path: Path, tokenizer, max_length: int, batch_size: int, pooling: str, normalize: bool):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Worker threads sleep between ops instead of spinning: on these 2 shared cores (an LLM,
        # the reader thread, other jobs) spinning threads steal the time the next op needs.
        # Embedding throughput, interleaved A/B at load average 5-8: 15-25% higher without spin.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._wanted = {i.name for i in self._session.get_inputs()}
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.pooling = pooling
        self.normalize = normalize

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        # Longest first, so each batch pads to similar lengths (as sentence-transformers does).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.zeros((len(texts), 0), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self._encode([texts[i] for i in idx])
            if vectors.shape[1] == 0:
                vectors = np.zeros((len(texts), batch.shape[1]), dtype=np.float32)
            vectors[idx] = batch
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def _encode(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        feed = {name: enc[name].astype(np.int64) for name in _INPUTS if name in self._wanted and name in enc}
        if "token_type_ids" in self._wanted and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        hidden = self._session.run(None, feed)[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = enc["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)


def load_onnx_embeddings(model_dir: Path, batch_size: int, recipe: int = EXPORT_VERSION) -> tuple[OnnxEmbeddings, int]:
    """(embeddings, max sequence length incl. special tokens) for a local sentence-transformers folder."""
    from transformers import AutoTokenizer

    pooling, normalize = _pooling(model_dir)
    config_file = model_dir / "sentence_bert_config.json"
    max_length = json.loads(config_file.read_text()).get("max_seq_length", 512) if config_file.exists() else 512
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    path = int8_model(model_dir, recipe)
    return OnnxEmbeddings(path, tokenizer, max_length, batch_size, pooling, normalize), max_length
