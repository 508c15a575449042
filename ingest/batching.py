"""Many files through the ingest pipeline at once: read ahead in a thread, embed and write in batches.

Why: one file at a time (read, chunk, embed, write, strictly in turn) leaves the embedder idle
while a file is parsed, and gives it tiny batches on small files (a 3-chunk file was one
3-chunk embedding call and one Chroma write). Here

- a reader thread checks, hashes, compares with the store, parses and chunks the next files
  (at most READ_AHEAD ahead) while the embedder works (ONNX Runtime releases the GIL);
- chunks of consecutive files are gathered into batches of BATCH_CHUNKS, embedded together
  (longest first within the batch, so padding is small) and written by one Chroma upsert.

The guarantees are the per-file ones of ingest.pipeline, unchanged:
- a file's older versions are deleted only once every chunk of its new version is stored;
- a file that fits is never split across writes: a batch that a file would overflow is written
  first, so a small file is stored by one write or not at all; only a file larger than a batch
  is written in several (as before);
- results come out in the order the files were given, each as soon as it is final (a file is
  final once its last chunk is written), so progress is reported file by file;
- one bad file fails alone: a failed batch write is retried file by file, naming the file;
- a document given twice in one run (two paths to one file) is run alone, after the first.

A file's `seconds` runs from the reader starting on it to its result: it includes the wait for
its batch to fill and be embedded with its neighbours'.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ingest.formats import LoadError
from ingest.identity import document_id
from rag.schema import FileResult

if TYPE_CHECKING:
    from ingest.pipeline import Ingestor, PreparedFile

#: Chunks per embedding batch and Chroma write. Also DocumentStore.add_chunks' write size, so a
#: large file is written in the same slices as before.
BATCH_CHUNKS = 256
#: Files read and chunked ahead of the writer, at most (memory: their chunks' text).
READ_AHEAD = 8


@dataclass
class _Job:
    path: Path
    source: str
    started: float
    result: FileResult | None = None  # final: unchanged, failed, or added/updated once written
    prepared: "PreparedFile | None" = None
    written: int = 0  # chunks of the new version stored so far
    alone: bool = False  # the same document as an earlier file of this run


def _failure(source: str, exc: Exception) -> FileResult:
    if isinstance(exc, LoadError):
        return FileResult(source, "failed", error=str(exc))
    return FileResult(source, "failed", error=f"{type(exc).__name__}: {exc}")  # a bug or an I/O error


def run_pipeline(ingestor: "Ingestor", files: list[Path]) -> Iterator[FileResult]:
    """Each file's result, in the order of `files`, as soon as it is final."""
    # READ_AHEAD - 1 waiting, plus the one the reader holds while it waits to hand it over
    jobs: queue.Queue = queue.Queue(maxsize=READ_AHEAD - 1)
    stop = threading.Event()
    reader = threading.Thread(target=_read_ahead, args=(ingestor, files, jobs, stop), name="ingest-reader", daemon=True)
    reader.start()
    writer = _Writer(ingestor)
    try:
        while True:
            with ingestor.timings("wait for reader"):
                job = jobs.get()
            if job is None:
                break
            if isinstance(job, BaseException):
                raise job
            yield from writer.take(job)
        yield from writer.finish()
    finally:
        stop.set()
        try:  # unblock a reader waiting to put; it checks `stop` before the next file
            jobs.get_nowait()
        except queue.Empty:
            pass


def _read_ahead(ingestor: "Ingestor", files: list[Path], out: queue.Queue, stop: threading.Event) -> None:
    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    seen: set[str] = set()
    try:
        for path in files:
            if stop.is_set():
                return
            job = _Job(path, str(path), time.perf_counter())
            doc_id = document_id(path)
            if doc_id in seen:
                job.alone = True
            else:
                seen.add(doc_id)
                try:
                    prepared = ingestor.prepare(path, job.source)
                except Exception as exc:
                    job.result = _failure(job.source, exc)
                else:
                    if isinstance(prepared, FileResult):
                        job.result = prepared
                    else:
                        job.prepared = prepared
            if not put(job):
                return
        put(None)
    except BaseException as exc:  # never leave the writer waiting for a reader that died
        put(exc)


class _Writer:
    """Gathers prepared files' chunks into batches, writes them, and releases results in order."""

    def __init__(self, ingestor: "Ingestor"):
        self.ingestor = ingestor
        self.store = ingestor.store
        self.waiting: list[_Job] = []  # given order, results not yet released
        self.batch: list[tuple[_Job, int, int]] = []  # (job, first, end) chunk slices not yet written
        self.size = 0

    def take(self, job: _Job) -> Iterator[FileResult]:
        if job.alone:
            yield from self.finish()
            job.result = self.ingestor.ingest_file(job.path, job.source)
        self.waiting.append(job)
        if job.prepared is not None:
            n = len(job.prepared.chunks)
            if self.size and self.size + n > BATCH_CHUNKS:
                self._write()  # the batch so far first: a file that fits a batch is one write
                yield from self._release()  # and its files reported before the next write starts
            first = 0
            while first < n:
                end = min(n, first + BATCH_CHUNKS - self.size)
                self.batch.append((job, first, end))
                self.size += end - first
                first = end
                if self.size >= BATCH_CHUNKS:
                    self._write()
                    yield from self._release()
        yield from self._release()

    def finish(self) -> Iterator[FileResult]:
        if self.batch:
            self._write()
        yield from self._release()

    def _write(self) -> None:
        batch, self.batch, self.size = self.batch, [], 0
        batch = [(job, a, b) for job, a, b in batch if job.result is None]  # a file failed earlier: skip its rest
        if not batch:
            return
        chunks = [c for job, a, b in batch for c in job.prepared.chunks[a:b]]
        ids = [i for job, a, b in batch for i in job.prepared.ids[a:b]]
        try:
            self.store.add_chunks(chunks, ids)
        except Exception:
            self._write_one_by_one(batch)
        else:
            for job, a, b in batch:
                job.written += b - a
        for job, _, _ in batch:
            if job.result is None and job.written == len(job.prepared.chunks):
                try:
                    job.result = self.ingestor.finish(job.prepared)
                except Exception as exc:
                    job.result = _failure(job.source, exc)

    def _write_one_by_one(self, batch: list[tuple[_Job, int, int]]) -> None:
        """After a failed batch write: each file's slice alone, so the error names its file."""
        for job, a, b in batch:
            if job.result is not None:
                continue
            try:
                self.store.add_chunks(job.prepared.chunks[a:b], job.prepared.ids[a:b])
            except Exception as exc:
                job.result = _failure(job.source, exc)
            else:
                job.written += b - a

    def _release(self) -> Iterator[FileResult]:
        while self.waiting and self.waiting[0].result is not None:
            job = self.waiting.pop(0)
            result = job.result
            if not job.alone:  # ingest_file timed its own
                result = dataclasses.replace(result, seconds=round(time.perf_counter() - job.started, 3))
            yield result
