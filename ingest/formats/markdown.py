"""Markdown into sections under the ATX (#) and Setext (=== / ---) heading path; YAML front
matter dropped, fenced code kept whole."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.documents import Document

from ingest.formats.base import Sections, decode_text

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def load(path: Path) -> list[Document]:
    lines = decode_text(path.read_bytes()).split("\n")
    if lines and lines[0].strip() == "---":  # YAML front matter
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() in ("---", "...")), None)
        if end is not None:
            lines = lines[end + 1:]
    out, buf, fence = Sections(), [], None

    def end_paragraph():
        out.add("\n".join(buf))
        buf.clear()

    for line in lines:
        if fence:
            buf.append(line)
            if re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", line):
                fence = None
                end_paragraph()
        elif m := _FENCE.match(line):
            end_paragraph()
            fence = m.group(1)
            buf.append(line)
        elif m := _ATX.match(line):
            end_paragraph()
            out.heading(len(m.group(1)), re.sub(r"(^|[ \t]+)#+$", "", m.group(2) or ""))
        elif (m := _SETEXT.match(line)) and buf and not re.match(r"^ {0,3}([-*+>]|\d+[.)])[ \t]", buf[0]):
            # Setext: the paragraph above an underline of = (level 1) or - (level 2) is a heading.
            out.heading(1 if m.group(1)[0] == "=" else 2, " ".join(b.strip() for b in buf))
            buf.clear()
        elif line.strip():
            buf.append(line)
        else:
            end_paragraph()
    end_paragraph()
    return out.finish()
