"""The answering chain end to end: real Chroma, real embedder, real packaged SmolLM2 where the
behaviour depends on the model; LangChain's GenericFakeChatModel only where a test must control
the exact words the model writes (citation handling) or prove the model is never called."""

from __future__ import annotations

import pytest

from rag.chain import REFUSAL, QAChain, make_chain
from rag.retrieval import Retriever
from rag.schema import Answer
from fakes import NeverCalled, scripted_llm as fake_llm


@pytest.fixture
def ingested(ingestor, corpus, settings):
    assert ingestor.ingest([corpus]).ok
    return settings.model_copy(update={"temperature": 0.0})


def test_out_of_corpus_question_is_refused_without_calling_the_llm(store, ingested):
    chain = QAChain(Retriever(store, ingested), NeverCalled(), ingested)
    answer = chain.ask("Who won the football World Cup final in 1998?")
    assert answer.refused and answer.answer == REFUSAL and answer.citations == []


def test_empty_collection_says_so_without_calling_the_llm(store, settings):
    answer = QAChain(Retriever(store, settings), NeverCalled(), settings).ask("Anything?")
    assert answer.refused and "no documents" in answer.answer


def test_stream_yields_text_then_the_answer_with_checked_citations(store, ingested):
    chain = QAChain(Retriever(store, ingested), fake_llm("The night ferry leaves at 23:40 [1][9]."), ingested)
    pieces = list(chain.stream("When does the night ferry to Bodø leave?"))
    *text, answer = pieces
    assert isinstance(answer, Answer) and all(isinstance(p, str) for p in text)
    assert " ".join("".join(text).split()) == answer.answer == "The night ferry leaves at 23:40 [1]."
    (citation,) = answer.citations
    assert citation.n == 1 and citation.source.endswith("page.html") and citation.supported
    assert not citation.inferred and not answer.refused
    assert answer.to_json().keys() == {"answer", "status", "citations", "rewritten_query", "refused"}
    assert answer.status == "answered" and "23:40" in citation.quote


def test_unsupported_sentence_is_dropped_not_shown(store, ingested):
    chain = QAChain(Retriever(store, ingested), fake_llm("The ferry leaves at 23:40 [1]. Puffins run the ferry [2]."), ingested)
    answer = chain.ask("When does the night ferry to Bodø leave?")
    assert answer.answer == "The ferry leaves at 23:40 [1]." and [c.n for c in answer.citations] == [1]
    assert all(c.supported for c in answer.citations)


def test_model_saying_not_found_is_unsure_and_quotes_the_evidence(store, ingested):
    chain = QAChain(Retriever(store, ingested), fake_llm("The documents do not say."), ingested)
    answer = chain.ask("When does the night ferry to Bodø leave?")
    assert answer.status == "unsure" and not answer.refused
    (c,) = answer.citations
    assert "23:40" in c.quote and c.quote in answer.answer


def test_repetition_loop_is_cut(store, ingested):
    loop = "The ferry leaves at 23:40. It leaves from pier 4. " + "The ferry is blue. " * 30
    answer = QAChain(Retriever(store, ingested), fake_llm(loop), ingested).ask("When does the night ferry leave?")
    assert answer.answer.count("The ferry is blue") <= 1 and "23:40" in answer.answer


@pytest.mark.slow
def test_local_model_answers_with_a_citation_to_the_right_page(store, ingested):
    chain = make_chain(ingested)
    answer = chain.ask("Why was the warehouse in Tromsø closed?")
    assert not answer.refused and answer.answer
    assert answer.citations, answer.answer
    top = answer.citations[0]
    assert top.source.endswith("report.pdf") and top.page == 2 and "flooding" in top.text
    assert "flood" in answer.answer.lower() or "flood" in top.quote.lower()


@pytest.mark.slow
def test_follow_up_is_rewritten_before_retrieval(store, ingested):
    chain = make_chain(ingested)
    first = chain.ask("Why was the warehouse in Tromsø closed?")
    follow = chain.ask("In which month did that happen?", history=[("Why was the warehouse in Tromsø closed?", first.answer)])
    assert follow.rewritten_query and "warehouse" in follow.rewritten_query.lower()
    unrelated = chain.ask("When does the night ferry to Bodø leave?", history=[("Why was the warehouse in Tromsø closed?", first.answer)])
    assert unrelated.rewritten_query is None  # a self-contained question is searched as asked
    assert any(p.source.endswith("report.pdf") and p.page == 2 for p in follow.passages)
