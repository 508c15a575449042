"""The chat's pieces without a browser: the Sources panel's data and HTML, example questions from
the documents, and a PDF page rendered with the quote highlighted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import docgen
from ingest.formats import load_file
from rag.app.page_image import find_span, pick_quote, render_page
from rag.app.sources_view import highlight, link_markers, location, passages_of, render_panel
from rag.app.starters import example_questions
from rag.schema import Answer, Citation, SearchHit

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def hit(rank, source, text, page=None, score=0.5, **meta):
    return SearchHit(rank, score, source, page, f"c{rank}", text, meta)


def answer_citing(n: int) -> Answer:
    hits = [hit(1, "/srv/a/handbook.pdf", "Top passage about the lamp.", 2, 0.7),
            hit(2, "deck.pptx", "Slide text <script>x</script>", 3, 0.45),
            hit(3, "prices.xlsx", "kayak | 840", None, 0.2, sheet="Prices", row=4)]
    c = hits[n - 1]
    cit = Citation(n, c.source, c.page, c.chunk_id, c.text, c.score)
    return Answer(f"It is so [{n}].", [cit], passages=hits)


def test_every_retrieved_passage_is_listed_cited_first_with_location_in_words():
    passages = passages_of(answer_citing(2))
    assert [p["n"] for p in passages] == [2, 1, 3]  # the cited one first, the others by rank
    assert [p["cited"] for p in passages] == [True, False, False]
    assert [p["where"] for p in passages] == ["deck.pptx, slide 3", "handbook.pdf, page 2", "prices.xlsx, sheet Prices, row 4"]
    html = render_panel([{"question": "q?", "passages": passages, "refused": False}])
    assert html.index('id="src-0-2"') < html.index('id="src-0-1"')
    assert "&lt;script&gt;" in html and "<script>" not in html  # document text cannot inject markup
    assert "cited" in html and "not cited" in html and "0.45" not in html  # words, not similarity numbers
    assert 'data-ref="0:1"' in html  # the PDF passage can be opened; the slide cannot


def test_each_answer_keeps_its_own_sources_newest_open():
    turns = [{"question": "first?", "passages": passages_of(answer_citing(1)), "refused": False},
             {"question": "second?", "passages": passages_of(answer_citing(3)), "refused": False}]
    html = render_panel(turns)
    assert 'id="turn-1" open' in html and 'id="turn-0">' in html
    assert html.index("second?") < html.index("first?")
    assert 'id="src-0-1"' in html and 'id="src-1-3"' in html


def test_quote_is_highlighted_whatever_the_whitespace_and_markers_link_to_sources():
    assert highlight("The lens is\n cleaned every  Tuesday.", "cleaned every Tuesday") == \
        "The lens is <mark>cleaned every Tuesday</mark>."
    assert highlight("a < b", None) == "a &lt; b"
    assert link_markers("Yes [1], no [4].", 2, {1, 2}) == "Yes [\\[1\\]](#src-2-1), no [4]."
    assert location("/x/y/report.pdf", 2) == "report.pdf, page 2"


def test_example_questions_come_from_the_documents_one_per_document_first():
    chunks = [(str(p), d.page_content, d.metadata) for p in sorted(SAMPLES.iterdir()) for d in load_file(p)]
    questions = example_questions(chunks)
    assert len(questions) == 3 and len(set(questions)) == 3
    assert all(q.endswith("?") for q in questions)
    faq = [("faq.md", "Can I bring my dog? Dogs on a lead are welcome.", {"heading": "FAQ > Visiting"})]
    assert example_questions(faq)[0] == "Can I bring my dog?"
    assert example_questions([]) == []


def test_pdf_page_rendered_with_the_quote_highlighted(tmp_path):
    pdf = docgen.make_pdf(tmp_path / "r.pdf", ["Cover page.", "The warehouse in Tromsø was closed in March because of flooding."])
    marked = render_page(pdf, 2, "closed in March\nbecause of flooding")
    plain = render_page(pdf, 2, None)
    assert marked.found and not plain.found and marked.pages == 2
    yellow = lambda im: int(((np.asarray(im)[:, :, 0] > 200) & (np.asarray(im)[:, :, 2] < 150)).sum())  # noqa: E731
    assert yellow(marked.image) > 1000 and yellow(plain.image) == 0
    assert not render_page(pdf, 2, "words that are not on the page").found
    with pytest.raises(ValueError, match="2 pages"):
        render_page(pdf, 5, None)
    assert find_span("ab\r\ncd", "B C") == (1, 4)
    assert pick_quote("First one. Second.", None) == "First one."


def test_without_a_quote_the_sentence_closest_to_the_answer_is_marked():
    passages = passages_of(Answer("The lamp flashes every 20 seconds [1].", [
        Citation(1, "h.md", None, "c1", "Intro text. The lamp flashes white every 20 seconds. Other.", 0.6)],
        passages=[hit(1, "h.md", "Intro text. The lamp flashes white every 20 seconds. Other.")]))
    assert passages[0]["quote"] == "The lamp flashes white every 20 seconds."
    assert "<mark>The lamp flashes white every 20 seconds.</mark>" in render_panel(
        [{"question": "q", "passages": passages, "refused": False}])
