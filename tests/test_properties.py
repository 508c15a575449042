"""Properties that must hold for every input (issue 22), checked with hypothesis:

- markup stays inert for any text, rendered with linkify on (bare `://`, `www.`, e-mail), and for
  any split of an answer into streamed pieces (a URL cut in two: "http:" then "//host");
- a citation's quote offsets always slice its passage to the quote;
- quota keys normalise: `::ffff:a.b.c.d` is a.b.c.d, an IPv6 address is its /64, and with
  RAG_CLIENT_IP_HEADER the rightmost value over all header lines is the key, whatever comes before.
"""

from __future__ import annotations

import ipaddress
import re

from hypothesis import HealthCheck, assume, given, settings, strategies as st
from markdown_it import MarkdownIt

from rag.app.markup import inert, inert_line
from rag.app.quota import client_key, normalise_address
from rag.schema import Answer, SearchHit

# GitHub-flavoured autolinks, as Gradio's chat renders: www., scheme://, e-mail; not bare "example.com".
_MD = MarkdownIt("commonmark", {"linkify": True}).enable("linkify")
_MD.linkify.set({"fuzzy_link": False})
_MD.linkify.add("//", None)

#: Fragments that make links, images and HTML, mixed with any text.
_PIECES = st.one_of(
    st.sampled_from(["http", "https", "ftp", "mailto:", ":", "/", "//", "://", "www", ".", "evil", "example", "com",
                     "x.org/leak?d=", " ", "\n", "\n\n", "[", "]", "(", ")", "![", "](", "<", ">", "&", "@", "`",
                     "\\", "img", " src=", "<img src=", "<a href=", "*", "_", "#", "|", "-", "    ", ">", "1."]),
    st.text(max_size=6),
)
_TEXTS = st.lists(_PIECES, max_size=40).map("".join)
_ALLOWED_TAGS = {"p", "em", "strong", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr",
                 "br", "pre", "code"}  # code: indented blocks only (backticks are escaped); formatting, no fetch


@settings(max_examples=250, deadline=None)
@given(_TEXTS)
def test_inert_text_renders_no_link_image_or_html_with_linkify_on(text):
    for escaped in (inert(text), inert_line(text)):
        html = _MD.render(escaped)
        tags = {t.lower() for t in re.findall(r"<([a-zA-Z][\w-]*)", html)}
        assert tags <= _ALLOWED_TAGS, (text, html)


class _Chain:
    def __init__(self, pieces):
        self.pieces = pieces

    def stream(self, message, history):
        yield from self.pieces
        yield Answer("".join(self.pieces))


class _Workspace:
    def __init__(self, pieces):
        from rag.settings import Settings

        self.settings, self.pieces = Settings(), pieces

    def chain(self, session, collection, overrides):
        return _Chain(self.pieces)


_URLS = st.builds(lambda scheme, host, path: f"{scheme}{host}.example/{path}",
                  st.sampled_from(["http://", "https://", "www.", "HTTP://", "ftp://"]),
                  st.text("abcxyz", min_size=1, max_size=8), st.text("abc?=&", max_size=8))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(_TEXTS, _URLS, _TEXTS), st.lists(st.integers(0, 200), max_size=8))
def test_streamed_pieces_stay_inert_however_a_url_is_split(parts, cuts):
    from rag.app.web import chat_turn

    answer = " ".join(parts)
    at = sorted({c % (len(answer) + 1) for c in cuts})
    pieces = [answer[a:b] for a, b in zip([0, *at], [*at, len(answer)])]
    for chat, _, _ in chat_turn(_Workspace(pieces), "s", "a question", [], [], None, {}):
        if chat:
            html = _MD.render(chat[-1]["content"])
            tags = {t.lower() for t in re.findall(r"<([a-zA-Z][\w-]*)", html)}
            assert tags <= _ALLOWED_TAGS, (pieces, chat[-1]["content"], html)


def test_a_url_split_across_two_pieces_is_inert():
    """The example behind the property: each piece alone is harmless, together they link."""
    from rag.app.web import chat_turn

    pieces = ["See http:", "//evil.example/leak?d=secret for more."]
    contents = [chat[-1]["content"] for chat, _, _ in chat_turn(_Workspace(pieces), "s", "q", [], [], None, {}) if chat]
    assert all("<a" not in _MD.render(c) for c in contents), [_MD.render(c) for c in contents]


# ------------------------------------------------------------------ quote offsets

_PROSE = st.lists(st.one_of(st.sampled_from(["The lens is cleaned.", " ", "  ", "\n", "\n\n", "Dr. Smith said so!",
                                             "e.g. this", "# Heading\n", "- item\n", "| a | b |\n", "Why? ",
                                             "3.5 m tall. ", "\t", "\u00a0", "Ω≈ç.", "…"]),
                              st.text(max_size=12)), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(_PROSE, st.data())
def test_quote_offsets_always_slice_the_passage_to_the_quote(text, data):
    from rag.answer.chain import _best_sentence_answer
    from rag.answer.evidence import quote_span, sentence_spans, split_passages

    for start, end in sentence_spans(text):
        assert 0 <= start < end <= len(text) and text[start:end] == text[start:end].strip()
    hit = SearchHit(1, 0.9, "doc.md", None, "doc-abc-00000", text)
    sentences = split_passages([hit])
    for s in sentences:
        assert text[s.start:s.end] == s.text
    if sentences:
        chosen = data.draw(st.lists(st.sampled_from(sentences), min_size=1, max_size=3))
        start, end, quote = quote_span(text, chosen)
        assert text[start:end] == quote
        answer = _best_sentence_answer("It says", "answered", chosen, [hit], None, {})
        c = answer.citations[0]
        assert c.text[c.quote_start:c.quote_end] == c.quote


# ------------------------------------------------------------------ quota keys

_V4 = st.ip_addresses(v=4).map(str)
_V6 = st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None)


@settings(max_examples=300, deadline=None)
@given(_V4)
def test_mapped_ipv4_is_the_ipv4_address(address):
    for spelled in (address, f"::ffff:{address}", f"::FFFF:{address}", f"[::ffff:{address}]:8080", f"{address}:443"):
        assert client_key(spelled, None) == address


@settings(max_examples=300, deadline=None)
@given(_V6, st.integers(0, 2**64 - 1))
def test_ipv6_addresses_of_one_64_are_one_key(address, host_bits):
    sibling = ipaddress.IPv6Address((int(address) >> 64 << 64) | host_bits)
    assume(sibling.ipv4_mapped is None)  # ::ffff:a.b.c.d is the IPv4 address (its own test)
    key = client_key(str(address), None)
    assert key == client_key(str(sibling), None) == client_key(f"[{sibling}]:443", None)
    assert ipaddress.ip_network(key).prefixlen == 64 and address in ipaddress.ip_network(key)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_V4, _V6.map(str), st.text(max_size=20)), max_size=5),
       st.one_of(_V4, _V6.map(str)), st.booleans())
def test_the_rightmost_header_value_is_the_key_whatever_the_client_put_before_it(forged, proxy, one_line):
    forged = [f.replace(",", " ").strip() for f in forged]
    if one_line:
        headers = [(b"x-forwarded-for", ", ".join([*forged, proxy]).encode("utf-8", "replace"))]
    else:
        headers = [(b"x-forwarded-for", f.encode()) for f in forged] + [(b"x-forwarded-for", proxy.encode())]
    assert client_key("127.0.0.1", headers, "x-forwarded-for") == normalise_address(proxy)
    assert client_key("127.0.0.1", headers, "") == "127.0.0.1"  # no header configured: the socket, always


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_garbage_is_one_bounded_key(text):
    key = normalise_address(text)
    assert key and len(key) <= 64 and normalise_address(text) == key
