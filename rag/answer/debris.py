"""Prompt debris in a small model's answer: what it copies from the prompt's layout rather than
from the documents. Removed before the answer is verified or shown.

- a leading role or label: "Answer:", "User:", "Assistant:", "A:"
- anything from a new turn on: "... User: next question"
- leading list numbering or bullets: "1. ", "- ", "* "
- file names in parentheses: "(programming.html)", "(report.pdf, page 2)"
- a passage header the model echoed: "[2] (faq.html)"
- wrapping quotes around the whole answer
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"^\s*(?:(?:answer|user|assistant|a|q|question|response|text)\s*:\s*)+", re.IGNORECASE)
_NEW_TURN = re.compile(r"\s*\b(?:User|Question|Q|Assistant|Human|Text)\s*:.*$", re.DOTALL)
_NUMBERING = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+")
_FILE = r"[\w .-]+\.(?:pdf|html?|md|txt|docx?|pptx?|xlsx?|csv|json|rtf|odt|epub)"
_FILE_IN_PARENS = re.compile(rf"\s*\(\s*{_FILE}(?:\s*,\s*page\s*\d+)?\s*\)", re.IGNORECASE)


def strip_debris(text: str) -> str:
    text = text.strip()
    text = _LABEL.sub("", text)
    text = _NEW_TURN.sub("", text)
    text = _NUMBERING.sub("", text)
    text = _FILE_IN_PARENS.sub("", text)
    text = text.strip()
    if len(text) >= 2 and text[0] in "\"“'" and text[-1] in "\"”'" and text.count(text[0]) <= 2:
        text = text[1:-1].strip()
    return re.sub(r"[ \t]{2,}", " ", text)
