"""Does a question refer back to the conversation? Only such a question is rewritten.

A self-contained question is searched as asked, whatever came before: "What is the capital of
Australia?" after a question about lighthouses must not inherit the lighthouse. A question refers
back when it has
- a pronoun that needs an antecedent (it, they, he, she, them, his, her, its, their, those,
  these), or "this"/"that" used as one ("when did that happen?", "how long does this take?"),
  but not "that" as a relative word ("the river that flows through Paris");
- ellipsis: it opens with "and", "also", "what about", "how about", "then", or it is a fragment
  of at most two content words with a question word ("and when?", "why?", "how much?").
"""

from __future__ import annotations

import re

from rag.answer.words import content_words

_PRONOUNS = frozenset("it its they them their theirs he him his she her hers those these".split())
_DEMONSTRATIVES = frozenset({"this", "that"})
# After these words "this"/"that" stands for something said before.
_PRONOUN_CONTEXT = frozenset(
    "is was are were be been happen happened happens mean means meant do does did cost costs take "
    "takes took work works include includes apply applies help helps change changed".split()
)
_OPENERS = re.compile(r"^\s*(?:and|also|then|so|what about|how about|but)\b", re.IGNORECASE)
_QUESTION_WORDS = frozenset("what when where who whom whose why how which".split())


def refers_back(question: str) -> bool:
    words = re.findall(r"[a-z']+", question.lower())
    if not words:
        return False
    if _OPENERS.match(question):
        return True
    if _PRONOUNS & set(words):
        return True
    for i, word in enumerate(words):
        if word in _DEMONSTRATIVES:
            after = words[i + 1] if i + 1 < len(words) else None
            before = words[i - 1] if i else None
            if after is None or after in _PRONOUN_CONTEXT or before in _PRONOUN_CONTEXT | {"about", "of", "for", "do", "does", "did"}:
                return True
    return len(content_words(question)) <= 1 and bool(_QUESTION_WORDS & set(words)) and len(words) <= 4
