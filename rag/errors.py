"""Errors a user can act on. The CLI prints their message, never a traceback."""


class RagError(Exception):
    """An error whose message tells the user what to fix."""


class ConfigError(RagError):
    """A setting is wrong or something it points at is missing."""


class EmbeddingMismatchError(RagError):
    """The collection was indexed with another embedding model than the one configured."""


class CollectionNotFoundError(RagError):
    """A read-only command named a collection that does not exist."""


class LLMError(RagError):
    """The LLM backend failed: unreachable, refused the key, unknown model. Names the setting to fix."""


class DatasetError(RagError):
    """An evaluation dataset is missing or malformed. Names the file and, where known, the line or entry."""


def one_line(exc: BaseException | str, limit: int = 200) -> str:
    """An exception's text on one line, bounded: what a one-line error message quotes."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
