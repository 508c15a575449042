"""Evidence-first answers: quotes with offsets, verification, the honest fallback, the follow-up
rule, debris stripping. The real embedder and real Chroma throughout; a scripted LLM where the
test needs exact words (a wrong number, a wrong name), the packaged Gemma in the slow tests."""

from __future__ import annotations

import re

import pytest

import docgen
from fakes import NeverCalled, scripted_llm
from rag.answer.answerability import has_asked_kind
from rag.answer import build
from rag.answer.chain import SAYS, UNSURE, QAChain
from rag.answer.debris import strip_debris
from rag.answer.evidence import select_evidence, sentence_spans, split_passages, within_margin
from rag.answer.followup import refers_back
from rag.answer.words import SENTENCE
from rag.retrieval import Retriever
from rag.schema import SearchHit
from rag.answer.verify import verify

# Evidence scores and the verification's meaning check are cosines: the real embedder's vectors
# are what is tested, so every test here gets it (it loads in about a second).
pytestmark = pytest.mark.real_embedder

HANDBOOK = """# Harbour Point Lighthouse: Keeper's Handbook

## The lamp

The lamp is a 1000-watt metal-halide bulb inside a second-order Fresnel lens. The lens turns
once every 20 seconds, which gives the light its signature.

### Cleaning

Clean the lens prisms every Monday with distilled water and a lint-free cloth. Never use
ammonia: it clouds the glass. Replace the bulb after 4,000 hours of burning.

## History

The tower was designed by Ingrid Solberg and first lit in 1868.
"""
LENS = "How often are the lens prisms cleaned?"
UNANSWERABLE = "Who replaced the bulb in 1990?"


def hit(n: int, text: str) -> SearchHit:
    return SearchHit(rank=n, score=0.6, source=f"doc{n}.md", page=None, chunk_id=f"c{n}", text=text)


@pytest.fixture
def handbook(ingestor, settings, tmp_path):
    path = docgen.make_text(tmp_path / "handbook.md", HANDBOOK)
    assert ingestor.ingest([path]).ok
    return settings.model_copy(update={"temperature": 0.0})


# ------------------------------------------------------------------ sentences and quotes

def test_sentences_keep_offsets_into_the_passage_and_join_wrapped_lines():
    spans = sentence_spans(HANDBOOK)
    texts = [HANDBOOK[s:e] for s, e in spans]
    assert "Clean the lens prisms every Monday with distilled water and a lint-free cloth." in texts
    assert "Never use\nammonia: it clouds the glass." in texts  # a wrapped line is not a sentence end
    assert "## The lamp" in texts  # headings are their own pieces (and never evidence)
    assert sentence_spans("Dr. Smith came to the U.S. in 1990. He stayed.") == [(0, 35), (36, 46)]


def test_evidence_is_the_best_sentence_with_exact_offsets(embedder):
    hits = [hit(1, "Visitors may climb the tower in summer. Tickets cost 6 euros."), hit(2, HANDBOOK)]
    best = select_evidence(LENS, hits, embedder.embeddings, top=2)
    assert best[0].n == 2 and best[0].text.startswith("Clean the lens prisms every Monday")
    for s in best:
        assert hits[s.n - 1].text[s.start : s.end] == s.text
    assert all(not s.text.startswith("#") for s in split_passages(hits))


def test_citation_quote_is_a_substring_of_the_passage_at_its_offsets(store, handbook):
    chain = QAChain(Retriever(store, handbook), scripted_llm("every Monday"), handbook)
    answer = chain.ask(LENS)
    assert answer.status == "answered" and answer.answer == "every Monday [1]", answer
    (c,) = answer.citations
    assert c.text[c.quote_start : c.quote_end] == c.quote
    assert "Clean the lens prisms every Monday" in c.quote
    assert answer.to_json()["status"] == "answered"
    assert answer.to_json()["citations"][0]["quote"] == c.quote


# ------------------------------------------------------------------ verification

EVIDENCE = "The tower was designed by Ingrid Solberg and first lit in 1868."


def test_verification_accepts_the_true_claim(embedder):
    v = verify("It was first lit in 1868 [1].", EVIDENCE, "When was the tower first lit?", embedder.embeddings)
    assert v.supported, v
    assert verify("1868", EVIDENCE, "When was the tower first lit?", embedder.embeddings).supported


def test_verification_rejects_a_wrong_number(embedder):
    v = verify("The tower was first lit in 1886 [1].", EVIDENCE, "When was the tower first lit?", embedder.embeddings)
    assert not v.supported and "1886" in v.reason


def test_verification_rejects_a_wrong_name(embedder):
    v = verify("The tower was designed by Karin Lindqvist.", EVIDENCE, "Who designed the tower?", embedder.embeddings)
    assert not v.supported and "name" in v.reason


def test_one_shared_word_is_not_support(embedder):
    evidence = "To share global variables across modules, create a special module, often called config."
    v = verify("Use the module's __name__ attribute.", evidence, "How do I share global variables across modules?",
               embedder.embeddings)
    assert not v.supported


# ------------------------------------------------------------------ the chain's statuses

def test_wrong_answer_is_replaced_by_the_evidence_sentence(store, handbook):
    """The evidence answers the question (the gate lets it through) but the draft does not check
    out: the best sentence itself, verbatim, is the answer."""
    chain = QAChain(Retriever(store, handbook), scripted_llm("The prisms are cleaned every 1000 hours [2]."), handbook)
    answer = chain.ask(LENS)
    assert answer.status == "answered" and not answer.refused
    assert answer.answer.startswith(f"{SAYS} “Clean the lens prisms every Monday")
    assert answer.answer.endswith("” [1]") and "1000" not in answer.answer
    (c,) = answer.citations
    assert c.text[c.quote_start : c.quote_end] == c.quote and c.quote.startswith("Clean the lens prisms")


def test_a_claim_copied_from_a_far_weaker_sentence_is_not_accepted(store, handbook):
    """The quick start's sample question got a claim copied from a weaker sentence of the passages (the
    light's range); here, "every 20 seconds" from the sentence about the lens turning: it is in
    the passages, but far from the question. Only sentences within the
    margin of the best are shown to the model and may carry a claim."""
    chain = QAChain(Retriever(store, handbook), scripted_llm("every 20 seconds [1]"), handbook)
    answer = chain.ask(LENS)
    assert "20 seconds" not in answer.answer and "every Monday" in answer.answer, answer.answer
    scored = select_evidence(LENS, answer.passages, chain.embeddings, top=4)
    assert len(within_margin(scored)) < len(scored)  # the lens-turning sentence was left out


def test_a_draft_without_what_was_asked_for_is_replaced(store, handbook):
    """A "when" question answered with no date: the sentence that has it answers instead."""
    chain = QAChain(Retriever(store, handbook), scripted_llm("The tower was first lit [1]."), handbook)
    answer = chain.ask("When was the tower first lit?")
    assert answer.status == "answered" and "1868" in answer.answer, answer.answer


@pytest.mark.parametrize("question, sentence, expected", [
    ("When was the tower first lit?", "It was first lit in 1868.", 1.0),
    ("When was the tower first lit?", "The tower was first lit by its keeper.", 0.0),
    ("When is the lens cleaned?", "The lens is cleaned every Tuesday.", 1.0),
    ("When is the lens cleaned?", "The lens is cleaned after a storm.", 1.0),
    ("How many keepers lived there?", "Three keepers lived there.", 1.0),
    ("Who designed the tower?", "The tower was designed by Ingrid Solberg.", 1.0),
    ("Who designed the tower?", "The tower was designed in a hurry.", 0.0),
    ("Why is ammonia not used?", "It clouds the glass.", 1.0),
])
def test_has_asked_kind(question, sentence, expected):
    assert has_asked_kind(question, sentence) == expected


def test_on_topic_question_without_its_answer_is_unsure_before_any_llm_call(store, handbook):
    """SQuAD-2.0 style: the handbook is about the tower, but says nothing of
    who replaced its bulb in 1990; the calibrated confidence gate stops it before the model (NeverCalled)."""
    answer = QAChain(Retriever(store, handbook), NeverCalled(), handbook).ask(UNANSWERABLE)
    assert answer.status == "unsure" and answer.answer.startswith(UNSURE), answer.answer
    assert answer.citations[0].quote


def test_heading_lines_are_not_evidence():
    text = "Climbing the tower\n\nThe tower has 112 steps and no lift."
    assert [s.text for s in split_passages([hit(1, text)])] == ["The tower has 112 steps and no lift."]


def test_model_saying_it_does_not_know_is_unsure(store, handbook):
    chain = QAChain(Retriever(store, handbook), scripted_llm("The text does not say."), handbook)
    answer = chain.ask(LENS)
    assert answer.status == "unsure" and answer.citations[0].quote


def test_unverified_sentence_is_dropped_verified_one_kept(store, handbook):
    reply = "Clean them every Monday [1]. Use ammonia from Oslo every 3 days [1]."
    answer = QAChain(Retriever(store, handbook), scripted_llm(reply), handbook).ask(LENS)
    assert answer.status == "answered" and answer.answer == "Clean them every Monday [1]."


def test_nothing_relevant_is_refused_before_any_llm_call(store, handbook):
    answer = QAChain(Retriever(store, handbook), NeverCalled(), handbook).ask("Who won the 1998 football World Cup final?")
    assert answer.status == "refused" and answer.refused and answer.citations == []


# ------------------------------------------------------------------ follow-ups

@pytest.mark.parametrize("question", ["What is the capital of Australia?", LENS,
                                      "What is the name of the river that flows through Paris?"])
def test_self_contained_question_is_not_referring(question):
    assert not refers_back(question)


@pytest.mark.parametrize("question", ["And when?", "When did that happen?", "Who built it?", "What about the fog horn?",
                                      "Why?", "How much do they cost?"])
def test_question_that_refers_back(question):
    assert refers_back(question)


def test_self_contained_follow_up_is_searched_as_asked(store, handbook):
    # The scripted model has one reply: a rewrite call would use it up and the answer would fail.
    chain = QAChain(Retriever(store, handbook), scripted_llm("every Monday"), handbook)
    answer = chain.ask(LENS, history=[("What is the capital of Australia?", "Canberra.")])
    assert answer.rewritten_query is None and answer.status == "answered"


def test_referring_follow_up_is_rewritten(store, handbook):
    chain = QAChain(Retriever(store, handbook), scripted_llm("How often are the lens prisms cleaned?", "every Monday"), handbook)
    answer = chain.ask("How often are they cleaned?", history=[("What are the lens prisms?", "Glass parts of the lens.")])
    assert answer.rewritten_query == LENS and answer.answer == "every Monday [1]"


# ------------------------------------------------------------------ debris

@pytest.mark.parametrize("raw, clean", [
    ("Answer: every Monday", "every Monday"),
    ("Create a special module (programming.html).", "Create a special module."),
    ("every Monday [1] User: and the bulb?", "every Monday [1]"),
    ("1. Clean them every Monday.", "Clean them every Monday."),
    ("- every Monday (handbook.pdf, page 2)", "every Monday"),
    ("“every Monday”", "every Monday"),
])
def test_prompt_debris_is_stripped(raw, clean):
    assert strip_debris(raw) == clean


# ------------------------------------------------------------------ the real model

@pytest.mark.slow
def test_readme_sample_question_is_answered_correctly(store, ingestor, settings):
    from pathlib import Path

    samples = Path(__file__).resolve().parents[1] / "data" / "samples"
    assert ingestor.ingest([samples]).ok
    chain = build(settings.model_copy(update={"temperature": 0.0}))
    answer = chain.ask(LENS)
    assert answer.status == "answered", answer.answer
    assert "monday" in answer.answer.lower()
    assert any("every Monday" in c.quote and c.text[c.quote_start : c.quote_end] == c.quote for c in answer.citations)


@pytest.mark.slow
def test_local_model_wrong_or_right_never_presents_an_unverified_answer(store, handbook):
    chain = build(handbook)
    # "Which cleaner…", not "What clouds the glass?": that three-word question's best passage scores
    # 0.299 with the int8 recipe-3 embedder (0.301 with recipe 2), at RAG_REFUSE_BELOW's edge, and
    # is refused: no answer to check. The refusal's false-refusal rate is bench/README.md's (1-3%).
    for question in ("Who designed the tower?", "When was the tower first lit?", "Which cleaner clouds the glass?"):
        answer = chain.ask(question)
        assert_presents_only_verified_text(answer, question, chain.embeddings)


def assert_presents_only_verified_text(answer, question: str, embeddings) -> None:
    """Whatever the model wrote, what the answer shows is either a quote (verbatim from a cited
    passage, after "Your documents say:" or "Not sure.") or sentences each cited and each verified,
    here again, against its citation's quote."""
    assert answer.status in ("answered", "unsure"), answer
    assert answer.citations, answer
    for c in answer.citations:
        assert c.quote and c.text[c.quote_start : c.quote_end] == c.quote
    text = answer.answer
    if text.startswith((SAYS, UNSURE)):
        assert answer.status == ("unsure" if text.startswith(UNSURE) else "answered")
        (c,) = answer.citations
        assert text == f"{UNSURE if answer.status == 'unsure' else SAYS} “{' '.join(c.quote.split())}” [{c.n}]", text
        return
    assert answer.status == "answered"
    sentences = [m.group(0).strip() for m in SENTENCE.finditer(text) if m.group(0).strip(" .!?")]
    assert sentences, text
    by_n = {c.n: c for c in answer.citations}
    for sentence in sentences:
        markers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        assert len(markers) == 1 and markers[0] in by_n, (sentence, text)
        c = by_n[markers[0]]
        claim = re.sub(r"\s*\[\d+\]", "", sentence)
        verdict = verify(claim, c.quote, question, embeddings, context=c.text)
        assert verdict.supported, (claim, c.quote, verdict)


# ------------------------------------------------------------------ the faces show the quote

def test_sources_panel_and_cli_show_the_quote(store, handbook, capsys):
    from rag.app.terminal import print_sources
    from rag.app.sources_view import passages_of, render_turn

    def panel(answer) -> str:
        return render_turn(0, "question", passages_of(answer), answer.refused, True, answer.status)

    answer = QAChain(Retriever(store, handbook), scripted_llm("every Monday"), handbook).ask(LENS)
    (c,) = answer.citations
    assert f"<mark>{' '.join(c.quote.split())}</mark>" in panel(answer)
    print_sources(answer)
    assert f"“{' '.join(c.quote.split())}”" in capsys.readouterr().out
    unsure = QAChain(Retriever(store, handbook), NeverCalled(), handbook).ask(UNANSWERABLE)
    assert unsure.status == "unsure" and "<b>Not sure.</b>" in panel(unsure) and "<mark>" in panel(unsure)
