"""The answer path's one vocabulary: content words, stop words, sentences, numbers and names.

Evidence scoring, the answerability gate, verification and follow-up detection all compare texts
by these; one definition keeps them agreeing.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours also per via
    passage passages document documents according""".split()
)


def content_words(text: str) -> set[str]:
    words = set()
    for word in _TOKEN.findall(text.lower()):
        if word in STOPWORDS or (len(word) < 3 and not word.isdigit()):
            continue
        # Light stemming, enough for plural and tense to match: "cleaned" ~ "cleaning" ~ "clean".
        for suffix in ("ing", "ed", "es", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        words.add(word)
    return words


# A sentence ends at . ! or ? followed by white space or the end (not inside "2.1"), or a newline.
SENTENCE = re.compile(r"[^\n]*?(?:[.!?]+(?=\s|$)|\n|$)")

_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million billion first second third fourth fifth half".split()
)


def numbers(text: str) -> set[str]:
    """Numbers as digits without thousands separators ("4,000" -> "4000"), and number words."""
    found = {m.group(0).replace(",", "").rstrip(".:/") for m in _NUMBER.finditer(text)}
    found |= {w for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS}
    return found


def names(text: str) -> set[str]:
    """Capitalised words, lowercased; a sentence's first word only when it is not a common word."""
    out = set()
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n+", text.strip()):
        for i, match in enumerate(_WORD.finditer(sentence)):
            word = match.group(0)
            if not word[0].isupper() or word.isdigit():
                continue
            lower = base(word)
            if (i == 0 or lower in STOPWORDS) and (lower in STOPWORDS or lower in _COMMON_OPENERS):
                continue
            out.add(lower)
    return out


_COMMON_OPENERS = frozenset(
    "yes no not every each many most some several all none only about around approximately over "
    "under nearly almost because since although however therefore in on at by for from with after "
    "before during between to a an the it its they he she we there this that these those".split()
)


def words(text: str) -> set[str]:
    """Every word, lowercased, without a possessive (stop words kept)."""
    return {base(m.group(0)) for m in _WORD.finditer(text)}


def base(word: str) -> str:
    """Lowercased, without a possessive: "Warsaw's" -> "warsaw"."""
    word = word.lower()
    return word[:-2] if word.endswith(("'s", "’s")) else word
