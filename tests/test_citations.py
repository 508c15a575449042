"""Citation markers: markers that point nowhere go, variants are normalised, streaming or not."""

from rag.answer.markers import MarkerFilter, normalise_markers


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
