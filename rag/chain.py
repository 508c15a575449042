"""Question in, grounded Answer out: rewrite -> retrieve -> refuse or answer -> check citations.

The steps are LangChain Runnables (prompt | llm | parser); this module strings them together so
that the answer can stream token by token and the refusal can skip the LLM entirely.

`QAChain.stream()` yields the answer's text in pieces (str), then one final `Answer`.
"""

from __future__ import annotations

import re
from typing import Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser

from rag.citations import SENTENCE, MarkerFilter, attribute, check_citations, content_words, normalise_markers
from rag.prompts import ANSWER_PROMPT, NOT_FOUND, REWRITE_PROMPT, format_history, format_passages
from rag.retrieval import MergedRetriever, Retriever
from rag.schema import Answer, SearchHit
from rag.settings import Settings

REFUSAL = "I could not find this in your documents."
EMPTY = "There are no documents in this collection yet. Add some first."

History = list[tuple[str, str]]  # (question, answer) pairs, oldest first


class QAChain:
    def __init__(self, retriever: Retriever | MergedRetriever, llm: BaseChatModel, settings: Settings):
        from rag.llm import llm_errors

        self.retriever = retriever
        self.settings = settings
        # A tiny local model answers in its first paragraph, then talks about the passages: the
        # model object says so (rag.llm.local.LocalChatModel.answers_in_first_paragraph).
        self.one_paragraph = bool(getattr(llm, "answers_in_first_paragraph", False))
        self._llm_errors = llm_errors
        self.rewrite_chain = REWRITE_PROMPT | llm | StrOutputParser()
        self.answer_chain = ANSWER_PROMPT | llm | StrOutputParser()

    # --- steps -------------------------------------------------------------------------------
    def rewrite(self, question: str, history: History) -> str:
        """A standalone version of a follow-up question; the question itself when there is no history."""
        if not history:
            return question
        with self._llm_errors(self.settings):
            text = self.rewrite_chain.invoke(
                {"history": format_history(history), "question": question}
            )
        rewritten = text.strip().splitlines()[0].strip().strip('"') if text.strip() else ""
        if not _usable_rewrite(rewritten, question, history):
            # A tiny model's rewrite can be empty, rambling, or leave "it" unresolved: then search
            # with the previous question alongside, which keeps what "it" means within reach.
            rewritten = f"{history[-1][0]} {question}"
        return rewritten

    def relevant(self, hits: list[SearchHit]) -> bool:
        return bool(hits) and max(h.score for h in hits) >= self.settings.refuse_below

    # --- the whole chain -----------------------------------------------------------------------
    def stream(self, question: str, history: History | None = None, k: int | None = None) -> Iterator[str | Answer]:
        history = history or []
        query = self.rewrite(question, history)
        rewritten = query if query != question else None
        hits = self.retriever.retrieve(query, k=k)
        if not hits or not self.relevant(hits):
            text = EMPTY if self.retriever.count() == 0 else REFUSAL
            yield text
            yield Answer(text, [], rewritten, refused=True, passages=hits)
            return

        inputs = {"passages": format_passages(hits), "question": query}
        markers = MarkerFilter(len(hits))
        raw: list[str] = []
        with self._llm_errors(self.settings):
            for token in self.answer_chain.stream(inputs):
                raw.append(token)
                shown = markers.feed(token)
                if shown:
                    yield shown
                so_far = "".join(raw)
                if _repeats_itself(so_far):
                    break  # small models loop; a repeated sentence adds nothing
                if self.one_paragraph and "\n\n" in so_far.strip():
                    break  # a tiny local model's answer is its first paragraph; then it rambles
        tail = markers.flush()
        if tail:
            yield tail
        text = _drop_repeats("".join(raw))
        if self.one_paragraph:
            text = text.strip().split("\n\n")[0]
        text = normalise_markers(text, len(hits))
        if _says_not_found(text):
            yield Answer(text, [], rewritten, refused=True, passages=hits)
            return
        attributed = attribute(text, hits, query)
        citations = check_citations(attributed, hits, query, inferred=attributed != text)
        yield Answer(attributed, citations, rewritten, refused=False, passages=hits)

    def ask(self, question: str, history: History | None = None, k: int | None = None) -> Answer:
        *_, answer = self.stream(question, history, k)
        return answer


_REFERRING = frozenset("it its they them their this that these those he she him his her there".split())


def _usable_rewrite(rewritten: str, question: str, history: History) -> bool:
    if not rewritten or len(rewritten) > 4 * len(question) + 200:
        return False
    asked = content_words(question)
    if not content_words(rewritten) & asked and asked:
        return False  # it answered or changed the subject instead of rewriting
    if _REFERRING & set(re.findall(r"\w+", question.lower())):
        earlier = content_words(" ".join(q + " " + a for q, a in history))
        return bool((content_words(rewritten) - asked) & earlier)
    return True


def _sentences(text: str) -> list[str]:
    """Finished sentences only: the last one may still be streaming."""
    return [m.group(0) for m in SENTENCE.finditer(text) if m.group(0).strip() and m.end() < len(text)]


def _repeats_itself(text: str) -> bool:
    done = [" ".join(s.split()).lower() for s in _sentences(text) if s.strip()]
    return len(done) > 1 and done[-1] in done[:-1]


def _drop_repeats(text: str) -> str:
    """The text up to the first sentence that repeats an earlier one."""
    seen: set[str] = set()
    end = 0
    for sentence in _sentences(text):
        key = " ".join(sentence.split()).lower()
        if key and key in seen:
            return text[:end].rstrip()
        if key:
            seen.add(key)
        end += len(sentence)
    return text


def _says_not_found(text: str) -> bool:
    core = NOT_FOUND.lower().rstrip(".")
    return text.strip().lower().startswith(core) or text.strip().lower() in {"", core}


def make_chain(settings: Settings) -> QAChain:
    """The chain for these settings: the configured embedder, store and LLM backend."""
    from rag.embeddings import make_embedder
    from rag.llm import make_llm
    from rag.store import open_store

    store = open_store(settings, make_embedder(settings), create=False)
    return QAChain(Retriever(store, settings), make_llm(settings), settings)
