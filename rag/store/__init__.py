"""The Chroma store: embedded in DATA_DIR/chroma, or a Chroma server when RAG_CHROMA_URL is set.

Each chunk's metadata carries `doc_id`, `doc_hash` (the version of the file it came from) and
`chunk_count` (how many chunks that version has). That is all the bookkeeping: a version is
complete when that many chunks with its hash are stored, so the store itself says what an
interrupted ingest left behind, with no second database to fall out of step with it.

This package is the only code that talks to Chroma: every query, read, write and collection
listing goes through `DocumentStore` (document_store.py) or the collection functions
(collections.py).

Listing documents need not import chromadb at all (half a second of `rag docs list`): the keyword
index file keeps a catalog of document versions in step with every write made here, and a small
`collections.json` next to it maps collection names to their index files (`listed_documents`).

The collection records the embedding model and dimension it was built with; opening it with
another model is refused with a message naming both, instead of Chroma's bare
"dimension mismatch" or, worse, silently meaningless search results with a same-size model.
"""

from rag.store.collections import (  # noqa: F401
    collection_metadata,
    collection_names,
    delete_collection,
    keyword_index_path,
    listed_documents,
    make_client,
    open_store,
)
from rag.store.document_store import (  # noqa: F401
    OWN_VECTOR_K,
    PAGE,
    RECHECK_SECONDS,
    SYNC_THRESHOLD,
    DocumentStore,
    StoredChunk,
    StoredVersion,
    _writer_marker,
)
