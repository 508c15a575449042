"""What a web visitor may change, decided on the server from the owner's settings.

The page locks some controls in public mode, but every event can be sent over raw HTTP with any
data (`POST /gradio_api/queue/join`), so the handlers pass what a request asked for through
`visitor_overrides` and use only what it returns:

- numbers are clamped to the ranges the page offers (k 1-12, temperature 0-1.5);
- the backend is RAG_LLM, or one of RAG_PUBLIC_BACKENDS in public mode (any configured one in
  private mode);
- public mode: the model is the owner's configured one for that backend or one of
  RAG_PUBLIC_MODELS; anything else is ignored (the page cannot send it, so only a hand-made
  request does);
- private mode: a local model is smollm2, gemma3-270m, the configured RAG_LOCAL_MODEL, or a
  `.gguf` file inside one of RAG_MODEL_DIRS; anything else is refused with ONE message whatever
  the path is (missing, a folder, not a GGUF, outside the folders), so the answer reveals nothing
  about the server's disk.

`redact` removes the owner's OpenAI base URL and model paths from messages shown to visitors.
"""

from __future__ import annotations

import os
from pathlib import Path

from rag.errors import ConfigError
from rag.settings import Settings

PACKAGED = ("smollm2", "gemma3-270m")
K_RANGE = (1, 12)
TEMPERATURE_RANGE = (0.0, 1.5)
BACKENDS = ("local", "openai")

NOT_AVAILABLE = (
    "that model is not available here: choose smollm2, gemma3-270m, the configured model, "
    "or a .gguf file inside a folder listed in RAG_MODEL_DIRS"
)


def _items(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def openai_configured(owner: Settings) -> bool:
    return bool(owner.openai_api_key or owner.openai_base_url)


def allowed_backends(owner: Settings) -> list[str]:
    """Backends a visitor may pick: RAG_LLM always; others in public mode only if listed."""
    if not owner.public:
        return list(BACKENDS)  # the owner's own machine: a missing key gets its own clear error
    wanted = [owner.llm, *_items(owner.public_backends)]
    return [b for b in BACKENDS if b in wanted and (b == owner.llm or b != "openai" or openai_configured(owner))]


def allowed_models(owner: Settings, backend: str) -> list[str]:
    """Public mode: the model names a visitor may pick for a backend (configured one first)."""
    configured = owner.local_model if backend == "local" else owner.openai_model
    extra = _items(owner.public_models)
    if backend == "local":
        extra = [m for m in extra if m.lower() in PACKAGED or m.lower().endswith(".gguf")]
    else:
        extra = [m for m in extra if m.lower() not in PACKAGED and not m.lower().endswith(".gguf")]
    return list(dict.fromkeys([configured, *extra]))


def _clamp(value, low, high, default, kind):
    try:
        number = kind(value)
    except (TypeError, ValueError):
        return default
    if number != number:  # NaN
        return default
    return min(max(number, low), high)


def visitor_overrides(owner: Settings, k=None, hybrid=None, backend=None, model=None, temperature=None) -> dict:
    """The Settings overrides a visitor's request may make, never more. Raises ConfigError with
    NOT_AVAILABLE for a local model path that private mode does not allow."""
    out = {
        "k": _clamp(k, *K_RANGE, owner.k, int),
        "hybrid": owner.hybrid if hybrid is None else bool(hybrid),
        "temperature": _clamp(temperature, *TEMPERATURE_RANGE, owner.temperature, float),
    }
    backend = backend if backend in allowed_backends(owner) else owner.llm
    out["llm"] = backend
    name = model.strip() if isinstance(model, str) else ""
    if backend == "local":
        out["local_model"] = local_model_choice(owner, name)
    else:
        out["openai_model"] = openai_model_choice(owner, name)
    return out


def openai_model_choice(owner: Settings, name: str) -> str:
    if not name:
        return owner.openai_model
    if owner.public:
        return name if name in allowed_models(owner, "openai") else owner.openai_model
    return name  # private mode: the owner's own key, the owner's own choice


def local_model_choice(owner: Settings, name: str) -> str:
    if not name or name == owner.local_model:
        return owner.local_model
    if owner.public:
        allowed = {m.lower(): m for m in allowed_models(owner, "local")}
        return allowed.get(name.lower(), owner.local_model)
    if name.strip().lower() in PACKAGED:
        return name.strip().lower()
    return str(allowed_model_file(owner, name))


def allowed_model_file(owner: Settings, name: str) -> Path:
    """A .gguf path typed in the private web app: the real file, if it lies inside RAG_MODEL_DIRS
    and starts with the GGUF magic bytes; otherwise ConfigError(NOT_AVAILABLE), the same for every
    reason. Symbolic links are resolved before the folder check."""
    try:
        path = Path(os.path.realpath(Path(name).expanduser()))
        folders = [Path(os.path.realpath(Path(d).expanduser())) for d in _items(owner.model_dirs)]
        inside = any(path.is_relative_to(f) and path != f for f in folders)
        if inside and path.suffix.lower() == ".gguf" and path.is_file():
            with path.open("rb") as fh:
                if fh.read(4) == b"GGUF":
                    return path
    except (OSError, ValueError):
        pass
    raise ConfigError(NOT_AVAILABLE)


def question_too_long(question: str, owner: Settings) -> str | None:
    """The refusal for a question over RAG_MAX_QUESTION_CHARS (every route checks it first), or None."""
    if len(question) <= owner.max_question_chars:
        return None
    return (f"question refused: it is {len(question):,} characters, the limit is {owner.max_question_chars:,} "
            "(RAG_MAX_QUESTION_CHARS); ask something shorter")


def chosen_collection(owner: Settings, requested: str | None) -> str | None:
    """Public mode: visitors never choose a collection (None: the workspace decides)."""
    return None if owner.public else requested


def redact(message: str, owner: Settings) -> str:
    """A message for a visitor in public mode: without the OpenAI base URL or model paths."""
    if not owner.public:
        return message
    from urllib.parse import urlsplit

    base = owner.openai_base_url or ""
    remote = {base, base.rstrip("/")}
    try:
        remote.add(urlsplit(base).netloc)  # the host:port alone, as connection errors print it
    except ValueError:
        pass
    remote.discard("")
    secrets = [*remote, owner.local_model if owner.local_model.lower() not in PACKAGED else ""]
    secrets += [m for m in _items(owner.public_models) if m.lower().endswith(".gguf")]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        message = message.replace(secret, "the remote model" if secret in remote else Path(secret).name)
    return message


def describe_backends_for_visitors(owner: Settings) -> list[str]:
    """Lines for the page's settings tab: which model answers, without URLs or paths in public mode."""
    from rag.llm import describe_llm

    lines = [describe_llm(owner.model_copy(update={"llm": "local"}))]
    if openai_configured(owner):
        if owner.public:
            lines.append(f"openai: {owner.openai_model} (remote model)")
        else:
            lines.append(describe_llm(owner.model_copy(update={"llm": "openai"})))
    else:
        lines.append("openai: **not configured** (set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server)")
    return lines
