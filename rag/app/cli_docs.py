"""`rag docs list|check|delete|clear`: the documents of a collection, and the store's integrity."""

from __future__ import annotations

import json
import sys

from rag.app.cli_common import settings_of, store_of


def list_documents(args):
    """(collection name, documents): from our own index file when it can answer (no chromadb
    import: `rag docs list` in well under a second), else from Chroma, repairing that file."""
    from rag.store import listed_documents

    listed = listed_documents(settings_of(args))
    if listed is not None:
        return listed
    _, store = store_of(args, create=False, embedder=False)
    docs = store.documents()
    store.keyword_index()  # brings the catalog back in step: the next listing is the fast one
    return store.name, docs


def cmd_docs(args) -> int:
    if args.docs_command == "list":
        name, docs = list_documents(args)
        if args.json:
            print(json.dumps([d.to_json() for d in docs], ensure_ascii=False))
            return 0
        for doc in docs:
            flag = "" if doc.complete else "  (incomplete: re-run rag ingest on it)"
            read = f"  ({doc.read.describe()})" if doc.read else ""
            print(f"{doc.chunks:>6} chunks  {doc.source}{read}{flag}")
        print(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks in {name!r}")
        return 0
    if args.docs_command == "check":
        return check_collections(args)
    _, store = store_of(args, create=False, embedder=False)
    if args.docs_command == "delete":
        # Match the source as stored, the same file by path, or a doc id.
        from ingest.pipeline import document_id

        wanted = {d.doc_id for d in store.documents() if args.source in (d.source, d.doc_id)}
        wanted.add(document_id(args.source))
        removed = sum(store.delete_document(doc_id) for doc_id in wanted)
        if not removed:
            print(f"no document {args.source!r} in {store.name!r} (see rag docs list)", file=sys.stderr)
            return 1
        print(f"deleted {args.source}: {removed} chunks removed from {store.name!r}")
        return 0
    if args.docs_command == "clear":
        removed = store.clear()
        print(f"cleared {store.name!r}: {removed} chunks removed")
        return 0
    raise AssertionError(args.docs_command)


def check_collections(args) -> int:
    """Per collection (all, or --collection): stored chunks vs what the vector index returns, and
    the keyword index; --repair fixes (loading the embedder: unreachable chunks are re-embedded).
    Exit 1 when something is (still) wrong."""
    from rag.integrity import check
    from rag.settings import load_settings
    from rag.store import collection_names, open_store

    names = [args.collection] if args.collection else collection_names(settings_of(args))
    embedder = None
    if args.repair:
        from rag.embeddings import make_embedder

        embedder = make_embedder(settings_of(args))
    reports = [check(open_store(load_settings(collection=name), embedder, create=False), repair=args.repair)
               for name in names]
    if args.json:
        print(json.dumps([r.to_json() for r in reports], ensure_ascii=False))
        return 0 if all(r.ok for r in reports) else 1
    for r in reports:
        more = ", ..." if r.unreachable > len(r.examples) else ""
        print(f"{r.collection}: {r.stored} chunks stored, {r.unreachable} unreachable in the vector index"
              + (f" ({', '.join(r.examples)}{more})" if r.examples else "")
              + f", keyword index in sync: {'yes' if r.keyword_in_sync else 'no'}")
        if args.repair and (r.repaired or r.keyword_fixed != (0, 0)):
            added, removed = r.keyword_fixed
            print(f"  repaired: {r.repaired} chunks re-added, {r.still_unreachable} still unreachable; "
                  f"keyword index {added} added, {removed} removed")
    if not names:
        print("no collections yet: rag ingest PATH")
    if not all(r.ok for r in reports) and not args.repair:
        print("fix: rag docs check --repair")
    return 0 if all(r.ok for r in reports) else 1
