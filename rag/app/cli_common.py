"""What every `rag` command starts from: the settings (with --collection) and the store."""

from __future__ import annotations


def settings_of(args):
    """The settings, with the command's --collection if it has one."""
    from rag.settings import load_settings

    return load_settings(collection=getattr(args, "collection", None))


def store_of(args, *, create: bool, embedder: bool = True):
    """Settings and the store. `embedder=False` (listing, deleting) loads no model: seconds saved."""
    from rag.store import open_store

    settings = settings_of(args)
    if not embedder:
        return settings, open_store(settings, None, create=False)
    from rag.embeddings import make_embedder

    return settings, open_store(settings, make_embedder(settings), create=create)
