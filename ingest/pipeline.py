"""Files in, chunks in the store out: one result per file, and one bad file never stops the rest.

Per file: refuse what cannot be read (missing, empty, too large, unsupported: the loaders'
`check_file`); hash the bytes;
if the store already holds that exact version completely, stop there (nothing is parsed or
embedded); otherwise load, chunk, upsert the new version under stable ids, and only then delete
older versions. A crash at any point leaves either the old version or an incomplete new one,
which the next run completes, so re-running is always the fix.

`Ingestor.ingest` runs many files as a pipeline (ingest/batching.py): a reader thread checks,
parses and chunks the next files while the chunks of earlier ones are embedded and written in
large batches across files. The per-file steps and guarantees are the same; `ingest_file` is the
one-file path (web uploads).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ingest import ocr, stats
from ingest.chunking import Chunker, ChunkLimits
from ingest.formats import LoadError, check_file, load_file
from ingest.identity import document_id, file_hash
from rag.context import readable_title
from rag.integrity import heal_written
from rag.schema import FileResult, ReadReport
from rag.settings import Settings
from rag.store import DocumentStore

STATUSES = ("added", "unchanged", "updated", "failed")


def expand_paths(paths: Iterable[str | Path], exclude: Iterable[Path] = ()) -> list[Path]:
    """Files as given, and folders walked recursively in sorted order, skipping hidden entries
    and the store's own folders (so `rag ingest data/` does not ingest Chroma's or the keyword
    index's files)."""
    excluded = {p.resolve() for p in exclude}
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            out.append(path)
            continue
        for root, dirs, files in os.walk(path):
            root_path = Path(root)
            dirs[:] = sorted(
                d for d in dirs if not d.startswith(".") and (root_path / d).resolve() not in excluded
            )
            out.extend(root_path / f for f in sorted(files) if not f.startswith("."))
    return out


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        counts = {status: 0 for status in STATUSES}
        for result in self.files:
            counts[result.status] += 1
        counts["chunks"] = sum(r.chunks for r in self.files if r.status in ("added", "updated"))
        return counts

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" for r in self.files)

    def to_json(self) -> dict:
        return {"files": [r.to_json() for r in self.files], **self.totals}


@dataclass
class PreparedFile:
    """A file read and chunked, its chunks not yet stored."""

    source: str
    doc_id: str
    doc_hash: str
    chunks: list
    ids: list[str]
    read: ReadReport
    replaced: bool  # a complete older version is in the store (the result is "updated")


class Ingestor:
    def __init__(self, store: DocumentStore, settings: Settings):
        self.store = store
        self.settings = settings
        self.timings = stats.StageTimer()  # seconds per stage, summed over this ingestor's runs
        embedder = store.embedder
        self.limits = ChunkLimits.for_embedder(settings.chunk_size, settings.chunk_overlap, embedder.max_tokens)
        self.chunker = Chunker(embedder.tokenizer, self.limits)
        self.ocr_options = ocr.OcrOptions(settings.ocr, settings.ocr_max_pages)

    def ingest(
        self,
        paths: Iterable[str | Path],
        on_result: Callable[[FileResult], None] | None = None,
    ) -> IngestReport:
        """Ingest files and folders; `on_result` gets each file's result as soon as it is final,
        in the order the files were given."""
        report = IngestReport()
        for result in self.ingest_files(self.expand(paths)):
            report.files.append(result)
            if on_result:
                on_result(result)
        return report

    def ingest_files(self, files: list[Path]) -> Iterator[FileResult]:
        """Each file's result, in order, as the pipeline finishes it (see ingest.batching)."""
        from ingest.batching import run_pipeline

        yield from run_pipeline(self, files)
        with self.timings("vector check"):
            heal_written(self.store)  # every chunk written findable (rag.integrity)

    def expand(self, paths: Iterable[str | Path]) -> list[Path]:
        return expand_paths(paths, exclude=[self.settings.chroma_dir, self.settings.keyword_dir])

    def ingest_file(self, path: Path, source: str | None = None) -> FileResult:
        """Ingest one file; `source` (default: the path as given) is what citations show."""
        source = source or str(path)
        started = time.perf_counter()
        try:
            result = self._ingest(path, source)
        except LoadError as exc:
            result = FileResult(source, "failed", error=str(exc))
        except Exception as exc:  # a bug or an I/O error: still one file's failure, not the batch's
            result = FileResult(source, "failed", error=f"{type(exc).__name__}: {exc}")
        heal_written(self.store)
        return dataclasses.replace(result, seconds=round(time.perf_counter() - started, 3))

    def _read(self, path: Path) -> tuple[list, ReadReport]:
        """Load one file into sections, with the report of what reading it found."""
        started = time.perf_counter()
        with stats.collecting() as found, ocr.using(self.ocr_options):
            sections = load_file(path)
        report = ReadReport(
            pages=found.pages,
            characters=sum(len(s.page_content) for s in sections),
            ocr_pages=found.ocr_pages,
            empty_pages=found.empty_pages,
            ocr_only=found.ocr_only,
            seconds=round(time.perf_counter() - started, 3),  # as FileResult.seconds: read <= total after rounding
            warning="; ".join(found.warnings) or None,
        )
        return sections, report

    def _ingest(self, path: Path, source: str) -> FileResult:
        prepared = self.prepare(path, source)
        if isinstance(prepared, FileResult):
            return prepared
        self.store.add_chunks(prepared.chunks, prepared.ids)
        return self.finish(prepared)

    def prepare(self, path: Path, source: str) -> "FileResult | PreparedFile":
        """Everything before embedding: check, hash, compare with the store, read, chunk.
        The file's "unchanged" result when the store already holds this version completely.
        Raises LoadError (or anything else) for this file's failure."""
        timer = self.timings
        with timer("check"):
            check_file(path, self.settings.max_file_mb)  # LoadError: this file's failure, with the reason
            doc_id = document_id(path)
            salt = self.limits.fingerprint()
            if path.suffix.lower() in ocr.OCR_EXTENSIONS:  # what OCR reads depends on its settings
                salt += "|" + self.ocr_options.fingerprint()
            doc_hash = file_hash(path, salt)
            versions = self.store.versions(doc_id)
            current = next((v for v in versions if v.doc_hash == doc_hash), None)
            if current and current.complete and len(versions) == 1:
                return FileResult(source, "unchanged", chunks=current.stored, read=self.store.read_report(doc_id))

        with timer("parse"):
            sections, report = self._read(path)
        with timer("chunk"):
            chunks = self.chunker.chunk(sections, title=readable_title(Path(source).name or path.name))
        if not chunks:
            raise LoadError("no text found in the file")
        ids = [f"{doc_id}-{doc_hash[:12]}-{i:05d}" for i in range(len(chunks))]
        for i, chunk in enumerate(chunks):
            chunk.metadata.update(
                source=source,
                file_name=path.name,
                doc_id=doc_id,
                doc_hash=doc_hash,
                chunk_index=i,
                chunk_count=len(chunks),
                **report.to_metadata(),
            )
        replaced = any(v.doc_hash != doc_hash and v.complete for v in versions)
        return PreparedFile(source, doc_id, doc_hash, chunks, ids, report, replaced)

    def finish(self, prepared: "PreparedFile") -> FileResult:
        """Once every chunk of the new version is stored: drop the older versions."""
        with self.timings("write"):
            self.store.delete_other_versions(prepared.doc_id, prepared.doc_hash)
        status = "updated" if prepared.replaced else "added"
        return FileResult(prepared.source, status, chunks=len(prepared.chunks), read=prepared.read)
