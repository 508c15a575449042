"""Our retrieval and answer chain are LangChain parts: the retriever is a `BaseRetriever` that passes
LangChain's standard retriever suite and drops into a user's own LCEL chain (README's example), and
the answer chain is a `Runnable` with invoke / batch / stream / astream / astream_events and
callbacks. Fast tier: the fake word-hash embedder and GenericFakeChatModel (exact words needed)."""

from __future__ import annotations

import asyncio
import tempfile
from functools import cache
from pathlib import Path

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests

from fakes import fake_embedder, scripted_llm
from rag.answer import build
from rag.answer.chain import QAChain
from rag.answer.reply import AnswerChunk
from rag.retrieval import MergedRetriever, Retriever
from rag.schema import Answer
from rag.settings import Settings

FERRY = "When does the night ferry to Bodø leave?"
FERRY_TEXT = ("Harbour timetable.\n\nThe night ferry to Bodø leaves at 23:40 from pier 3. "
              "The morning ferry leaves at 07:15.\n\nTickets are sold on board.")
PUFFIN_TEXT = "Puffins nest on the outer islands from April to August. The colony counts about 4,000 pairs."


def _ingest(folder: Path, settings: Settings):
    from ingest.pipeline import Ingestor
    from rag.store import open_store

    store = open_store(settings, fake_embedder())
    assert Ingestor(store, settings).ingest([folder]).ok
    return store


@cache
def _shared_store():
    """A store the standard suite's constructor can reuse (it builds many retrievers)."""
    root = Path(tempfile.mkdtemp(prefix="rag-lc-"))
    (root / "docs").mkdir()
    (root / "docs" / "ferry.txt").write_text(FERRY_TEXT)
    (root / "docs" / "puffins.txt").write_text(PUFFIN_TEXT)
    for n, what in enumerate(["lamp", "fog horn", "night watch", "harbour office"]):  # k up to 3 and more
        (root / "docs" / f"note{n}.txt").write_text(f"The {what} is checked every night before the night ferry.")
    settings = Settings(data_dir=root / "data")
    return _ingest(root / "docs", settings), settings


class TestRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[Retriever]:
        return Retriever

    @property
    def retriever_constructor_params(self) -> dict:
        store, settings = _shared_store()
        return {"store": store, "settings": settings}

    @property
    def retriever_query_example(self) -> str:
        return "night ferry"


@pytest.fixture
def ferry_store(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ferry.txt").write_text(FERRY_TEXT)
    (tmp_path / "docs" / "puffins.txt").write_text(PUFFIN_TEXT)
    settings = Settings(data_dir=tmp_path / "data", temperature=0.0)
    return _ingest(tmp_path / "docs", settings), settings


def test_retriever_documents_carry_our_metadata(ferry_store):
    store, settings = ferry_store
    retriever = Retriever(store, settings)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(FERRY, k=2)
    hits = retriever.retrieve(FERRY, k=2)
    assert [d.page_content for d in docs] == [h.text for h in hits]
    top = docs[0]
    assert top.metadata["source"].endswith("ferry.txt") and top.metadata["chunk_id"] == hits[0].chunk_id
    assert top.metadata["score"] == hits[0].score and top.metadata["rank"] == 1 and top.id == hits[0].chunk_id
    merged = MergedRetriever([retriever])
    assert isinstance(merged, BaseRetriever) and merged.invoke(FERRY, k=1)[0].page_content == hits[0].text


def test_our_retriever_in_a_users_own_lcel_chain(ferry_store):
    """README's example: our retriever as the context step of a chain the user writes."""
    store, settings = ferry_store
    retriever = Retriever(store, settings, k=2)
    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")
    seen = {}

    def show(value):
        seen["prompt"] = value.to_string()
        return value

    def join(docs: list[Document]) -> str:
        return "\n\n".join(d.page_content for d in docs)

    chain = ({"context": retriever | join, "question": RunnablePassthrough()} | prompt | show
             | scripted_llm("23:40") | StrOutputParser())
    assert chain.invoke(FERRY) == "23:40"
    assert "leaves at 23:40" in seen["prompt"] and FERRY in seen["prompt"]


@pytest.fixture
def chain(ferry_store) -> QAChain:
    store, settings = ferry_store
    return build(settings, stores=[store], llm=scripted_llm(*["The night ferry leaves at 23:40 [1]."] * 6))


def test_the_chain_is_a_runnable_returning_an_answer(chain):
    assert isinstance(chain, Runnable)
    answer = chain.invoke(FERRY)
    assert isinstance(answer, Answer) and answer.status == "answered" and "23:40" in answer.answer
    same = chain.invoke({"question": FERRY, "history": [("Where do the ferries leave from?", "Pier 3.")], "k": 2})
    assert same.answer == answer.answer and len(same.passages) == 2


def test_batch_answers_each_question(chain):
    answers = chain.batch([FERRY, {"question": FERRY, "k": 1}])
    assert [type(a) for a in answers] == [Answer, Answer]
    assert all("23:40" in a.answer for a in answers) and len(answers[1].passages) == 1


def test_stream_yields_text_chunks_then_one_with_the_answer(chain):
    chunks = list(chain.stream(FERRY))
    assert all(isinstance(c, AnswerChunk) for c in chunks)
    *text, last = chunks
    assert len(text) > 1 and all(c.answer is None and c.text for c in text)
    assert last.answer is not None and last.answer.answer == "The night ferry leaves at 23:40 [1]."
    whole = sum(chunks[1:], chunks[0])
    assert whole.answer == last.answer and whole.text == "".join(c.text for c in text)


def test_astream_and_astream_events(chain):
    async def run():
        chunks = [c async for c in chain.astream(FERRY)]
        events = [e async for e in chain.astream_events(FERRY, version="v2")]
        return chunks, events

    chunks, events = asyncio.run(run())
    assert len(chunks) > 2 and chunks[-1].answer is not None and "23:40" in chunks[-1].answer.answer
    kinds = [e["event"] for e in events]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end" and "on_chain_stream" in kinds
    # The chat model's own events show inside the chain's run (callbacks reach the LLM call).
    assert "on_chat_model_stream" in kinds


def test_callbacks_see_the_chain_run(chain):
    class Recorder(BaseCallbackHandler):
        def __init__(self):
            self.started, self.ended = [], []

        def on_chain_start(self, serialized, inputs, **kwargs):
            self.started.append(inputs)

        def on_chain_end(self, outputs, **kwargs):
            self.ended.append(outputs)

    recorder = Recorder()
    answer = chain.invoke(FERRY, config={"callbacks": [recorder]})
    assert recorder.started and recorder.ended and "23:40" in answer.answer


def test_reply_streams_then_gives_the_whole(chain):
    reply = chain.reply(FERRY)
    pieces = list(reply)
    assert len(pieces) > 1 and reply.streamed == "".join(pieces)
    assert reply.answer().answer == "The night ferry leaves at 23:40 [1]."


def test_closing_a_reply_stops_the_model_stream(ferry_store):
    """Stop: closing the reply closes the model's token stream at once (no more tokens are read)."""
    store, settings = ferry_store
    read = []

    class Counting(type(scripted_llm("x"))):
        def _stream(self, *args, **kwargs):
            for chunk in super()._stream(*args, **kwargs):
                read.append(chunk)
                yield chunk

    llm = Counting(messages=iter(["The night ferry leaves at 23:40 from pier 3 every evening [1]."]))
    reply = build(settings, stores=[store], llm=llm).reply(FERRY)
    first = next(iter(reply))
    reply.close()
    assert first and len(read) <= 2
