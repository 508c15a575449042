"""Question in, Answer out: rewrite? -> retrieve -> refuse | evidence -> answer -> verify.

1. A follow-up is rewritten into a standalone question only when it refers back (rag.followup);
   any other question is searched as asked.
2. Nothing relevant retrieved: refused, before any LLM call.
3. The best sentences of the passages are the evidence (rag.evidence). When the calibrated
   confidence that they answer the question is low (rag.answerability.THRESHOLD), the answer is
   "Not sure" and quotes the best of them ("unsure"), before any LLM call.
4. Otherwise the LLM answers from the evidence alone, in a short prompt
   (rag.prompts.EVIDENCE_PROMPT), streamed.
5. Prompt debris is stripped; each answer sentence is verified against the evidence it cites or
   the evidence that supports it (rag.verify). Verified sentences that hold what was asked for
   (a number for "when", a name for "who") are the answer ("answered"), each citation carrying
   its quote; when none does, the best evidence sentence itself, verbatim, is the answer
   ("answered", "Your documents say: “…” [n]") if the confidence is high (rag.answerability.SURE),
   else "Not sure" with it. A model that says the text does not answer makes it "unsure".

`QAChain.stream()` yields the model's text in pieces (str), then one final `Answer`, whose text
can differ from what streamed (debris removed, unverified sentences dropped, or the fallback).
"""

from __future__ import annotations

import re
import time
from typing import Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser

from rag.answerability import SURE, THRESHOLD, confidence, has_asked_kind
from rag.citations import SENTENCE, MarkerFilter, content_words, normalise_markers
from rag.debris import strip_debris
from rag.evidence import Sentence, by_passage, quote_span, select_evidence, within_margin
from rag.followup import refers_back
from rag.prompts import (
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
from rag.verify import verify

REFUSAL = "I could not find this in your documents."
EMPTY = "There are no documents in this collection yet. Add some first."
SAYS = "Your documents say:"
UNSURE = f"Not sure. {SAYS}"

History = list[tuple[str, str]]  # (question, answer) pairs, oldest first


def embeddings_of(retriever) -> object | None:
    """The LangChain Embeddings behind a retriever (the first one of a merged retriever)."""
    first = retriever.retrievers[0] if hasattr(retriever, "retrievers") else retriever
    store = getattr(first, "store", None)
    embedder = getattr(store, "embedder", None)
    return getattr(embedder, "embeddings", None)


class QAChain:
    def __init__(self, retriever: Retriever | MergedRetriever, llm: BaseChatModel, settings: Settings):
        from rag.llm import llm_errors

        self.retriever = retriever
        self.settings = settings
        self.embeddings = embeddings_of(retriever)
        self._llm_errors = llm_errors
        self.rewrite_chain = REWRITE_PROMPT | llm | StrOutputParser()
        self.answer_chain = EVIDENCE_PROMPT | llm.bind(max_tokens=EVIDENCE_MAX_TOKENS) | StrOutputParser()

    # --- steps -------------------------------------------------------------------------------
    def rewrite(self, question: str, history: History) -> str:
        """A standalone version of a question that refers back; any other question as asked."""
        if not history or not refers_back(question):
            return question
        with self._llm_errors(self.settings):
            text = self.rewrite_chain.invoke(
                {"history": format_history(history), "question": question}
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

    # --- the whole chain -----------------------------------------------------------------------
    def stream(self, question: str, history: History | None = None, k: int | None = None) -> Iterator[str | Answer]:
        t0 = time.perf_counter()
        history = history or []
        query = self.rewrite(question, history)
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
        if not evidence or evidence[0].score < self.settings.unsure_below or (gate and sure < THRESHOLD):
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
            for token in self.answer_chain.stream({"evidence": prompt, "question": query}):
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

    def ask(self, question: str, history: History | None = None, k: int | None = None) -> Answer:
        *_, answer = self.stream(question, history, k)
        return answer

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
        supported=True, inferred=inferred, quote=quote, quote_start=start, quote_end=end,
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


def make_chain(settings: Settings) -> QAChain:
    """The chain for these settings: the configured embedder, store and LLM backend."""
    from rag.embeddings import make_embedder
    from rag.llm import make_llm
    from rag.store import open_store

    store = open_store(settings, make_embedder(settings), create=False)
    return QAChain(Retriever(store, settings), make_llm(settings), settings)
