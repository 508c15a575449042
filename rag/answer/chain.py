"""Question in, Answer out: rewrite? -> retrieve -> refuse | evidence -> answer -> verify.

1. A follow-up is rewritten into a standalone question only when it refers back (rag.answer.followup);
   any other question is searched as asked.
2. Nothing relevant retrieved: refused, before any LLM call.
3. The best sentences of the passages are the evidence (rag.answer.evidence). When the calibrated
   confidence that they answer the question is low (rag.answer.answerability.THRESHOLD), the answer is
   "Not sure" and quotes the best of them ("unsure"), before any LLM call.
4. Otherwise the LLM answers from the evidence alone, in a short prompt
   (rag.answer.prompts.EVIDENCE_PROMPT), streamed.
5. Prompt debris is stripped; each answer sentence is verified against the evidence it cites or
   the evidence that supports it (rag.answer.verify). Verified sentences that hold what was asked for
   (a number for "when", a name for "who") are the answer ("answered"), each citation carrying
   its quote; when none does, the best evidence sentence itself, verbatim, is the answer
   ("answered", "Your documents say: “…” [n]") if the confidence is high (rag.answer.answerability.SURE),
   else "Not sure" with it. A model that says the text does not answer makes it "unsure".

The chain is a LangChain Runnable: `invoke({"question": …, "history": […], "k": 4})` (or a plain
question string) returns an `Answer`; `stream()` / `astream()` yield `AnswerChunk`s (the text as the
model writes it, then one chunk carrying the final Answer, whose text can differ from what streamed:
debris removed, unverified sentences dropped, or the fallback). The faces use `reply()`, a `Reply`
to iterate for text and then ask for the whole (in the manner of simonw/llm's Response).
Built in one place: rag.answer.build.
"""

from __future__ import annotations

import re
import time
from typing import Any, AsyncIterator, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config, run_in_executor

from rag.answer.reply import AnswerChunk, Reply

from rag.answer.answerability import SURE, THRESHOLD, confidence, has_asked_kind
from rag.answer.words import SENTENCE, content_words
from rag.answer.markers import MarkerFilter, normalise_markers
from rag.answer.debris import strip_debris
from rag.answer.evidence import Sentence, by_passage, quote_span, select_evidence, within_margin
from rag.answer.followup import refers_back
from rag.answer.prompts import (
    EVIDENCE_MAX_TOKENS,
    EVIDENCE_PROMPT,
    NOT_FOUND,
    REWRITE_PROMPT,
    format_evidence,
    format_history,
)
from rag.retrieval import MergedRetriever, Retriever
from rag.schema import Answer, Citation, SearchHit
from rag.settings import Settings
from rag.answer.verify import verify

REFUSAL = "I could not find this in your documents."
EMPTY = "There are no documents in this collection yet. Add some first."
SAYS = "Your documents say:"
UNSURE = f"Not sure. {SAYS}"

History = list[tuple[str, str]]  # (question, answer) pairs, oldest first


def _child(run_manager, config: RunnableConfig | None) -> RunnableConfig | None:
    """The config for the model calls inside a run: callbacks nest under the chain's run."""
    if run_manager is None:
        return None
    return patch_config(config, callbacks=run_manager.get_child())


def _inputs(value: str | dict) -> tuple[str, History, int | None]:
    """(question, history, k) from the chain's input: a question, or {"question", "history", "k"}."""
    if isinstance(value, str):
        return value, [], None
    history = [tuple(turn) for turn in value.get("history") or []]
    return value["question"], history, value.get("k")


class QAChain(Runnable[str | dict, Answer]):
    """Question (with history) in, `Answer` out; see the module docstring for the steps."""

    def __init__(self, retriever: Retriever | MergedRetriever, llm: BaseChatModel, settings: Settings):
        from rag.llm import llm_errors

        self.retriever = retriever
        self.settings = settings
        self.embeddings = retriever.embeddings
        self._llm_errors = llm_errors
        self.rewrite_chain = REWRITE_PROMPT | llm | StrOutputParser()
        # Called directly, not as prompt | llm | parser: closing a sequence's stream reads the
        # model's stream to its end, and Stop must end the generation at once.
        self.answer_llm = llm.bind(max_tokens=EVIDENCE_MAX_TOKENS)

    # --- steps -------------------------------------------------------------------------------
    def rewrite(self, question: str, history: History, config: RunnableConfig | None = None) -> str:
        """A standalone version of a question that refers back; any other question as asked."""
        if not history or not refers_back(question):
            return question
        with self._llm_errors(self.settings):
            text = self.rewrite_chain.invoke(
                {"history": format_history(history), "question": question}, config
            )
        rewritten = strip_debris(text.strip().splitlines()[0]).strip('"') if text.strip() else ""
        if not _usable_rewrite(rewritten, question, history):
            # A tiny model's rewrite can be empty, rambling, or leave "it" unresolved. The question
            # does refer back, so search with the previous question alongside.
            rewritten = f"{history[-1][0]} {question}"
        return rewritten

    def relevant(self, hits: list[SearchHit]) -> bool:
        return bool(hits) and max(h.score for h in hits) >= self.settings.refuse_below

    def evidence(self, query: str, hits: list[SearchHit]) -> list[Sentence]:
        return select_evidence(query, hits, self.embeddings, top=self.settings.evidence_sentences)

    # --- the Runnable ----------------------------------------------------------------------------
    def invoke(self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        return self._call_with_config(
            lambda value, run_manager, config: self._run(*_inputs(value), _child(run_manager, config)).answer(),
            input, config)

    def stream(self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[AnswerChunk]:
        yield from self._transform_stream_with_config(iter([input]), self._transform, config)

    async def astream(self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[AnswerChunk]:
        async def one():
            yield input

        async for chunk in self._atransform_stream_with_config(one(), self._atransform, config):
            yield chunk

    def _transform(self, inputs: Iterator[str | dict], run_manager=None, config=None) -> Iterator[AnswerChunk]:
        for value in inputs:
            yield from self._run(*_inputs(value), _child(run_manager, config)).chunks()

    async def _atransform(self, inputs: AsyncIterator[str | dict], run_manager=None, config=None) -> AsyncIterator[AnswerChunk]:
        async for value in inputs:
            chunks = self._run(*_inputs(value), _child(run_manager, config)).chunks()
            done = object()
            while (chunk := await run_in_executor(None, next, chunks, done)) is not done:
                yield chunk

    # --- for the faces -----------------------------------------------------------------------------
    def reply(self, question: str, history: History | None = None, k: int | None = None) -> Reply:
        """The answer as it is written: iterate it for text, then `.answer()` for the whole."""
        return self._run(question, history or [], k)

    def ask(self, question: str, history: History | None = None, k: int | None = None) -> Answer:
        return self._run(question, history or [], k).answer()

    # --- the whole chain -----------------------------------------------------------------------
    def _run(self, question: str, history: History, k: int | None, config: RunnableConfig | None = None) -> Reply:
        return Reply(self._steps(question, history, k, config))

    def _steps(self, question: str, history: History, k: int | None,
               config: RunnableConfig | None) -> Iterator[str | Answer]:
        """The text pieces as the model writes them, then the final Answer (wrapped by Reply)."""
        t0 = time.perf_counter()
        query = self.rewrite(question, history, config)
        rewritten = query if query != question else None
        hits = self.retriever.retrieve(query, k=k)
        if not hits or not self.relevant(hits):
            text = EMPTY if self.retriever.count() == 0 else REFUSAL
            yield text
            yield Answer(text, [], rewritten, status="refused", passages=hits)
            return

        evidence = self.evidence(query, hits)
        timings: dict = {}
        gate = self.settings.answerability_gate
        sure = confidence(query, hits, evidence) if evidence else float("-inf")
        if not evidence or (gate and sure < THRESHOLD):
            answer = self._unsure(evidence, hits, rewritten, timings)  # too weak to ask the model
            timings["total"] = round(time.perf_counter() - t0, 3)
            yield answer.answer
            yield answer
            return

        # Only sentences nearly as good as the best are shown to the model and may carry a claim: a
        # far weaker one is what a small model copies a wrong answer from.
        evidence = within_margin(evidence)
        prompt = format_evidence(by_passage(evidence))
        timings["prompt_chars"] = len(prompt)
        markers = MarkerFilter(len(hits))
        raw: list[str] = []
        started = time.perf_counter()
        with self._llm_errors(self.settings):
            messages = EVIDENCE_PROMPT.invoke({"evidence": prompt, "question": query})
            for chunk in self.answer_llm.stream(messages, config):
                token = chunk.text
                if token and "first_token" not in timings:
                    timings["first_token"] = round(time.perf_counter() - t0, 3)
                    timings["llm_first_token"] = round(time.perf_counter() - started, 3)
                raw.append(token)
                so_far = "".join(raw).lstrip()
                if any(strip_debris(line) for line in so_far.split("\n")[:-1]):
                    # The answer is its first line (a line of debris, "Answer:", does not count);
                    # then the model rambles.
                    shown = markers.feed(token.split("\n")[0])
                    if shown:
                        yield shown
                    break
                shown = markers.feed(token)
                if shown:
                    yield shown
        tail = markers.flush()
        if tail:
            yield tail
        lines = [strip_debris(line) for line in "".join(raw).split("\n")]
        text = normalise_markers(next((line for line in lines if line), ""), len(hits))
        text = _drop_repeats(text)
        if not text or _says_not_found(text):
            answer = self._unsure(evidence, hits, rewritten, timings)
        else:
            answer = self._verified(text, evidence, hits, query, rewritten, timings, quote_ok=not gate or sure >= SURE)
        timings["total"] = round(time.perf_counter() - t0, 3)
        yield answer

    # --- composing the Answer ----------------------------------------------------------------
    def _verified(self, text: str, evidence: list[Sentence], hits, query: str, rewritten, timings,
                  quote_ok: bool = True) -> Answer:
        """The answer sentences that verify against the evidence, each cited to its quote. When none
        does: the best sentence as the answer if `quote_ok` (the evidence surely answers), else
        "not sure" with it."""
        kept: list[str] = []
        cited: dict[int, Citation] = {}
        for match in SENTENCE.finditer(text):
            sentence = match.group(0).strip()
            if not re.sub(r"\[\d+\]", "", sentence).strip(" .!?"):
                continue
            claimed = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
            # One evidence sentence must carry the claim: the cited passages' first, best first.
            order = [e for e in evidence if e.n in claimed] + [e for e in evidence if e.n not in claimed]
            for e in order:
                if verify(sentence, e.text, query, self.embeddings, context=hits[e.n - 1].text).supported:
                    body = re.sub(r"\s*\[\d+\]", "", sentence).rstrip()
                    stop = len(body.rstrip(".!?"))
                    kept.append(f"{body[:stop]} [{e.n}]{body[stop:]}")
                    if e.n not in cited:
                        cited[e.n] = _citation(e.n, hits, e.start, e.end, e.text, inferred=e.n not in claimed)
                    break
        if not kept or not has_asked_kind(query, " ".join(kept)):
            # The draft does not check out, or lacks what was asked for: the best sentence itself
            # answers when the evidence surely holds the answer; otherwise we are not sure.
            if quote_ok:
                return self._quoted(evidence, hits, rewritten, timings)
            return self._unsure(evidence, hits, rewritten, timings)
        return Answer(" ".join(kept), list(cited.values()), rewritten, status="answered", passages=hits,
                      timings=timings, evidence=evidence)

    def _quoted(self, evidence: list[Sentence], hits, rewritten, timings) -> Answer:
        """Answered with the best evidence sentence, verbatim."""
        return _best_sentence_answer(SAYS, "answered", evidence, hits, rewritten, timings)

    def _unsure(self, evidence: list[Sentence], hits, rewritten, timings) -> Answer:
        """Not sure: the best evidence sentence, verbatim, with its citation."""
        if not evidence:
            return Answer(REFUSAL, [], rewritten, status="refused", passages=hits, timings=timings)
        return _best_sentence_answer(UNSURE, "unsure", evidence, hits, rewritten, timings)


def _best_sentence_answer(lead: str, status: str, evidence: list[Sentence], hits, rewritten, timings) -> Answer:
    """`lead “best evidence sentence” [n]`, cited to that sentence as its quote."""
    best = evidence[0]
    start, end, quote = quote_span(hits[best.n - 1].text, [best])
    citation = _citation(best.n, hits, start, end, quote, inferred=False)
    return Answer(f"{lead} “{_shown(quote)}” [{best.n}]", [citation], rewritten, status=status, passages=hits,
                  timings=timings, evidence=evidence)


def _shown(quote: str) -> str:
    """A quote as the answer shows it: one line, and a document's own "[9]" as "(9)", so that
    no quoted text reads as a citation marker (the Citation keeps the exact words)."""
    return re.sub(r"\[(\s*\d+\s*)\]", r"(\1)", " ".join(quote.split()))


def _citation(n: int, hits: list[SearchHit], start: int, end: int, quote: str, inferred: bool) -> Citation:
    hit = hits[n - 1]
    return Citation(
        n=n, source=hit.source, page=hit.page, chunk_id=hit.chunk_id, text=hit.text, score=hit.score,
        inferred=inferred, quote=quote, quote_start=start, quote_end=end,
    )


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


_NOT_FOUND = re.compile(
    r"\b(?:not (?:mentioned|stated|specified|given|say|said|known|in the (?:text|documents?|passages?))"
    r"|do(?:es)? not (?:say|mention|state|contain)|no (?:information|answer|mention)|cannot be (?:determined|answered)"
    r"|unknown|n/a)\b",
    re.IGNORECASE,
)


def _says_not_found(text: str) -> bool:
    """The model says the text does not answer the question (NOT_FOUND or its own words)."""
    core = NOT_FOUND.lower().rstrip(".")
    plain = text.strip().lower()
    return plain.startswith(core) or plain in {"", core} or bool(_NOT_FOUND.search(plain))
