"""What the `rag` command prints while it works: one line per ingested file, a streamed answer
(with a "searching…" note until the first token) and its sources."""

from __future__ import annotations

import sys


def result_line(result) -> str:
    """One line per file: status, chunks, path, then what reading it found and the time."""
    if result.error:
        return f"{result.status:<9} {'':>12}  {result.path}: {result.error}"
    line = f"{result.status:<9} {result.chunks:>5} chunks  {result.path}"
    if result.read:
        line += f"  ({result.read.describe()}; {result.seconds:.1f} s)"
        if result.read.warning:
            line += f"  warning: {result.read.warning}"
    return line


def print_sources(answer) -> None:
    if answer.rewritten_query:
        print(f"(searched for: {answer.rewritten_query})")
    if not answer.citations:
        return
    print("\nSources:")
    for c in answer.citations:
        where = c.source + (f", page {c.page}" if c.page else "")
        doubt = "  (matched by content; the model cited nothing)" if c.inferred else ""
        print(f"  [{c.n}] {where}{doubt}")
        if c.quote:
            print(f"      “{' '.join(c.quote.split())}”")


class Waiting:
    """A "searching…" note on stderr while nothing has been printed yet, erased (with backspaces,
    so a prompt before it stays) by the first token. Only on a terminal: piped output stays clean."""

    def __init__(self, text: str = "searching…", stream=None):
        self.stream = stream or sys.stderr
        self.text = text
        self.shown = False

    def show(self) -> None:
        if not self.shown and self.stream.isatty():
            self.stream.write(self.text)
            self.stream.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            n = len(self.text)
            self.stream.write("\b" * n + " " * n + "\b" * n)
            self.stream.flush()
            self.shown = False


def stream_answer(chain, question: str, history, k, waiting: Waiting | None = None):
    """Print the answer as it streams; return the final Answer."""
    waiting = waiting or Waiting()
    waiting.show()
    reply = chain.reply(question, history, k=k)
    try:
        for piece in reply:
            waiting.clear()
            print(piece, end="", flush=True)
        answer = reply.answer()
    finally:
        waiting.clear()
    print()
    if " ".join(reply.streamed.split()) != " ".join(answer.answer.split()):
        print(answer.answer)  # checked against the documents: the final words differ from the draft
    return answer
