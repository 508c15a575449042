"""Fast-tier tests for breakages issue 28 found no fast test would notice (each was applied by
hand, seen to fail here, and reverted): the verifier's cosine floor, the spreadsheet and slide
parse budgets and the per-file time limit, and the OCR settings in a file's version hash.

Budgets are tested with the code's own limits set tiny (its LoadError says which), never with
a stopwatch.
"""

from __future__ import annotations

import pytest

import docgen
from ingest.formats import base as loaders
from ingest.formats import LoadError, load_file
from rag.answer.verify import MIN_SIMILARITY, verify

# ------------------------------------------------------------------ the verifier's cosine floor

QUESTION = "What does the keeper log?"
CLAIM = "The keeper logs harbour lantern ferry granite beacon readings."
# Every word of the claim is in this evidence (no number, name or novel word check fires), but
# among forty others: the claim's meaning is far from the sentence's (word-hash cosine below 0.30).
FAR = ("Gulls, kelp, moss and rope lay on cliff and pier while storm tide wave current reef shoal bay "
       "fjord herring salmon cod net sail mast hull winch engine boat island north south east west "
       "weather prism lens fog signal shift anchor copper timber canvas pulley ladder chimney kettle "
       "barrel bucket compass chart clock bell whistle hammer chisel saw nail plank paint tar oil "
       "wick glass brass iron the keeper logs harbour lantern ferry granite beacon readings.")
NEAR = "The keeper logs harbour lantern ferry granite beacon readings every night."


def test_a_claim_whose_words_are_all_there_is_rejected_by_the_cosine_alone(word_hash_embedder):
    embeddings = word_hash_embedder.embeddings
    far = verify(CLAIM, FAR, QUESTION, embeddings)
    assert not far.supported and far.reason.startswith("meaning too far from the evidence"), far
    assert 0 < far.similarity < MIN_SIMILARITY
    # the same claim passes every lexical check: without an embedder it is accepted
    assert verify(CLAIM, FAR, QUESTION, None).supported
    # positive control: evidence that says just that is accepted with the embedder
    near = verify(CLAIM, NEAR, QUESTION, embeddings)
    assert near.supported and near.similarity >= MIN_SIMILARITY


# ------------------------------------------------------------------ loader budgets, with tiny limits

def _xlsx(path, rows: int):
    return docgen.make_xlsx(path, {"Log": [["Day", "Lamp"]] + [[f"d{i}", f"lit {i}"] for i in range(rows)]})


def _csv(path, rows: int):
    return docgen.make_csv(path, [["Day", "Lamp"]] + [[f"d{i}", f"lit {i}"] for i in range(rows)])


def _pptx(path, slides: int):
    return docgen.make_pptx(path, [(f"Slide {i}", f"Lamp lit {i}.") for i in range(slides)])


@pytest.mark.parametrize("make, what", [(_xlsx, "rows"), (_csv, "rows"), (_pptx, "slides and shapes")],
                         ids=["xlsx", "csv", "pptx"])
def test_each_row_or_shape_counts_against_the_parse_budget(tmp_path, monkeypatch, make, what):
    path = make(tmp_path / f"f.{make.__name__[1:]}", 40)
    assert load_file(path)  # within the real budget
    monkeypatch.setattr(loaders, "MAX_ELEMENTS", 30)
    with pytest.raises(LoadError) as err:
        load_file(path)
    assert str(err.value) == f"more than 30 {what} — refusing (the limit per file)"
    monkeypatch.setattr(loaders, "MAX_ELEMENTS", 200)  # 41 rows, or 40 slides and their shapes, fit
    assert load_file(path)


@pytest.mark.parametrize("make", [_xlsx, _csv], ids=["xlsx", "csv"])
def test_the_per_file_time_limit_is_enforced_by_the_parser(tmp_path, monkeypatch, make):
    """The deadline is checked every 512 elements: a file of 1,100 rows with the limit at 0 s
    is refused by the code's own check, naming the limit."""
    path = make(tmp_path / f"t.{make.__name__[1:]}", 1100)
    monkeypatch.setattr(loaders, "MAX_SECONDS", 0.0)
    with pytest.raises(LoadError) as err:
        load_file(path)
    assert str(err.value) == "parsing took longer than 0 s — refusing (the limit per file)"
    monkeypatch.setattr(loaders, "MAX_SECONDS", 60.0)
    assert len(load_file(path)) == 1100


def test_the_default_bounds_are_the_documented_ones():
    assert (loaders.MAX_ELEMENTS, loaders.MAX_SECONDS) == (200_000, 60.0)


# ------------------------------------------------------------------ OCR settings are part of the version

def test_changing_rag_ocr_re_reads_pdfs_but_not_text_files(settings, store, tmp_path, monkeypatch):
    """A PDF's (or image's) version hash includes the OCR settings: changing RAG_OCR or
    RAG_OCR_MAX_PAGES re-reads it on the next ingest; a text file stays unchanged."""
    from ingest.pipeline import Ingestor

    pdf = docgen.make_pdf(tmp_path / "log.pdf", ["The lamp is lit at dusk and put out at dawn."])
    text = docgen.make_text(tmp_path / "notes.txt", "Notes\n\nThe ferry leaves at noon.")
    reads = []
    real = Ingestor._read
    monkeypatch.setattr(Ingestor, "_read", lambda self, path: reads.append(path.name) or real(self, path))

    def run(**update):
        reads.clear()
        s = settings.model_copy(update=update)
        return {r.path.rsplit("/", 1)[-1]: r.status for r in Ingestor(store, s).ingest([pdf, text]).files}

    assert run(ocr="off") == {"log.pdf": "added", "notes.txt": "added"}
    assert run(ocr="off") == {"log.pdf": "unchanged", "notes.txt": "unchanged"} and reads == []
    assert run(ocr="auto") == {"log.pdf": "updated", "notes.txt": "unchanged"} and reads == ["log.pdf"]
    assert run(ocr="auto", ocr_max_pages=3) == {"log.pdf": "updated", "notes.txt": "unchanged"}
    assert run(ocr="auto", ocr_max_pages=3) == {"log.pdf": "unchanged", "notes.txt": "unchanged"} and reads == []
