"""Citation checking: markers that point nowhere go, loose citations are flagged."""

from rag.citations import MarkerFilter, check_citations, normalise_markers
from rag.schema import SearchHit


def hit(n, text, page=None):
    return SearchHit(rank=n, score=0.5, source=f"doc{n}.pdf", page=page, chunk_id=f"c{n}", text=text)


HITS = [
    hit(1, "Adults pay 6 euros and children under 12 climb for free.", page=2),
    hit(2, "The present granite tower was finished in 1868."),
    hit(3, "Clean the lens prisms every Monday with distilled water."),
]


def test_markers_pointing_nowhere_are_removed():
    text = "The tower was finished in 1868 [2][7]. Entry is 6 euros [0] [1]."
    assert normalise_markers(text, 3) == "The tower was finished in 1868 [2]. Entry is 6 euros [1]."


def test_marker_variants_are_normalised():
    assert normalise_markers("Yes [1, 3] and [Passage 2].", 3) == "Yes [1][3] and [2]."


def test_streaming_filter_matches_the_final_text():
    raw = ["The tower", " was finished in 1868 [", "2", "][", "9] and costs", " 6 euros [1,", " 3]. See [", "x]"]
    f = MarkerFilter(3)
    streamed = "".join(f.feed(t) for t in raw) + f.flush()
    assert " ".join(streamed.split()) == " ".join(normalise_markers("".join(raw), 3).split())
    assert "[9]" not in streamed and "[x]" in streamed


def test_supported_and_loose_citations():
    answer = "The tower was finished in 1868 [2]. It was built of granite in 1868 [1]."
    cites = {c.n: c for c in check_citations(answer, HITS, "When was the tower finished?")}
    assert cites[2].supported and cites[2].source == "doc2.pdf"
    assert not cites[1].supported  # passage 1 is about tickets: nothing in common with the claim
    assert [c.n for c in check_citations(answer, HITS, "q")] == [2, 1]


def test_repeating_the_question_is_not_support():
    """Words from the question do not count: the passage must back what the answer adds."""
    answer = "The lens prisms are cleaned on Monday [3]. The lens prisms are cleaned yearly [1]."
    cites = {c.n: c for c in check_citations(answer, HITS, "When are the lens prisms cleaned?")}
    assert cites[3].supported and not cites[1].supported


def test_citation_carries_page_and_text():
    (c,) = check_citations("Children under 12 climb for free [1].", HITS, "Do children pay?")
    assert (c.page, c.chunk_id, c.supported) == (2, "c1", True) and "6 euros" in c.text


def test_marker_free_answer_is_attributed_by_overlap():
    from rag.citations import attribute

    answer = "The prisms are cleaned every Monday with distilled water. I hope this helps!"
    text = attribute(answer, HITS, "How often are the lens prisms cleaned?")
    assert text == "The prisms are cleaned every Monday with distilled water [3]. I hope this helps!"
    (c,) = check_citations(text, HITS, "q", inferred=True)
    assert c.n == 3 and c.inferred and c.supported


def test_model_markers_are_not_second_guessed_by_attribution():
    from rag.citations import attribute

    answer = "Adults pay 6 euros [1]. The prisms are cleaned every Monday."
    assert attribute(answer, HITS, "q") == answer


def test_a_number_the_passage_does_not_have_is_not_supported():
    cites = check_citations("The tower was finished in 1869 [2].", HITS, "When was the tower finished?")
    assert not cites[0].supported
    from rag.citations import attribute

    assert attribute("The granite tower was finished in 1869.", HITS, "q") == "The granite tower was finished in 1869."
