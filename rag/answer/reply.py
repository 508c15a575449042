"""A streamed answer as one object: iterate it for the text as it is written, then ask for the whole.

In the manner of simonw/llm's `Response`: no caller checks the type of what a stream yields.
The final `Answer` can differ from the streamed text (debris removed, unverified sentences
dropped, or the quoted fallback); faces show the streamed text while it comes, then the Answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from rag.schema import Answer


@dataclass(frozen=True)
class AnswerChunk:
    """One piece of the Runnable's stream: `text` as the model writes it; the last chunk carries
    the final `answer`. Chunks add up (LangChain aggregates streams with `+`)."""

    text: str = ""
    answer: Answer | None = None

    def __add__(self, other: "AnswerChunk") -> "AnswerChunk":
        return AnswerChunk(self.text + other.text, other.answer or self.answer)


class Reply:
    """Wraps the chain's steps (text pieces, then one Answer). `close()` stops the generation: the
    model's stream is closed at once (what Stop in the browser does)."""

    def __init__(self, steps: Iterator[str | Answer]):
        self._steps = steps
        self._answer: Answer | None = None
        self._streamed: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for step in self._steps:
            if isinstance(step, Answer):
                self._answer = step
            elif step:
                self._streamed.append(step)
                yield step

    def chunks(self) -> Iterator[AnswerChunk]:
        """The same stream as AnswerChunks, the last one carrying the Answer."""
        for piece in self:
            yield AnswerChunk(text=piece)
        yield AnswerChunk(answer=self.answer())

    def answer(self) -> Answer:
        """The final Answer (reads the rest of the stream first)."""
        for _ in self:
            pass
        if self._answer is None:
            raise RuntimeError("the answer stream ended without an Answer")
        return self._answer

    @property
    def streamed(self) -> str:
        """The text streamed so far."""
        return "".join(self._streamed)

    def close(self) -> None:
        self._steps.close()
