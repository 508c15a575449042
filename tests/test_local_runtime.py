"""The local runtimes under rag.llm.local: xllamacpp (the default, a prebuilt wheel) and
llama-cpp-python (the optional [llama-cpp] extra). Reading a GGUF's metadata, the message when a
runtime is not installed, the same answers from both, Stop ending a generation at once, and
xllamacpp's loopback port serving no one."""

from __future__ import annotations

import importlib.util
import json
import struct
import threading
import time
import urllib.error
import urllib.request

import pytest

import rag.llm as rag_llm
from rag.errors import ConfigError
from rag.llm import Backend, make_llm, resolve_local_model
from rag.llm.gguf import has_chat_template, metadata_string
from rag.settings import Settings

INSTALLED = [name for name, entry in rag_llm.RUNTIMES.items() if importlib.util.find_spec(entry.needs)]
QUESTION = "What is the capital of France? Answer in one word."


def _gguf(kvs: list[tuple[str, int, bytes]]) -> bytes:
    """A GGUF header with these (key, type, encoded value) metadata entries and no tensors."""
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, kind, value in kvs:
        out += struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", kind) + value
    return out


def _string(text: str) -> bytes:
    return struct.pack("<Q", len(text.encode())) + text.encode()


# --------------------------------------------------------------------------------------------
# the GGUF metadata reader (decides the plain prompt before a model loads)


def test_chat_template_is_found_after_arrays_and_scalars(tmp_path):
    tokens = struct.pack("<IQ", 8, 3) + b"".join(_string(t) for t in ("<s>", "a", "b"))
    scores = struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0.0, 1.0, 2.0)
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf([
        ("general.name", 8, _string("tiny")),
        ("tokenizer.ggml.tokens", 9, tokens),
        ("tokenizer.ggml.scores", 9, scores),
        ("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 0)),
        ("tokenizer.chat_template", 8, _string("{{ messages }}")),
    ]))
    assert metadata_string(path, "general.name") == "tiny"
    assert metadata_string(path, "tokenizer.chat_template") == "{{ messages }}"
    assert has_chat_template(path)
    path.write_bytes(_gguf([("general.name", 8, _string("base"))]))
    assert not has_chat_template(path)


def test_not_gguf_and_cut_short_are_value_errors(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_text("not a model")
    with pytest.raises(ValueError, match="not a GGUF"):
        has_chat_template(path)
    path.write_bytes(_gguf([("general.name", 8, _string("tiny"))])[:-2])
    with pytest.raises(ValueError, match="truncated"):
        has_chat_template(path)


def test_packaged_smollm2_has_a_chat_template():
    assert has_chat_template(resolve_local_model("smollm2"))


# --------------------------------------------------------------------------------------------
# choosing a runtime


def test_auto_runtime_is_the_compiled_one_only_where_its_extra_is_installed(monkeypatch):
    assert Settings().local_runtime == "auto"
    assert rag_llm.resolve_runtime("xllamacpp") == "xllamacpp"
    expected = "llama-cpp" if importlib.util.find_spec("llama_cpp") else "xllamacpp"
    assert rag_llm.resolve_runtime("auto") == expected
    entry = rag_llm.RUNTIMES["llama-cpp"]  # a machine without the [llama-cpp] extra:
    monkeypatch.setitem(rag_llm.RUNTIMES, "llama-cpp", Backend(entry.module, "no_such_module_27", entry.missing))
    assert rag_llm.resolve_runtime("auto") == "xllamacpp"


def test_a_runtime_that_is_not_installed_names_its_extra(monkeypatch):
    entry = rag_llm.RUNTIMES["llama-cpp"]
    monkeypatch.setitem(rag_llm.RUNTIMES, "llama-cpp", Backend(entry.module, "no_such_module_27", entry.missing))
    with pytest.raises(ConfigError) as info:
        make_llm(Settings(local_runtime="llama-cpp", local_model="smollm2"))
    text = str(info.value)
    assert "\n" not in text
    assert 'pip install -e ".[llama-cpp]"' in text and "RAG_LOCAL_RUNTIME" in text


def test_an_unknown_runtime_is_refused_by_settings():
    with pytest.raises(ValueError):
        Settings(local_runtime="vllm")


# --------------------------------------------------------------------------------------------
# real models


@pytest.mark.slow
@pytest.mark.parametrize("runtime", INSTALLED)
def test_each_installed_runtime_answers_and_streams(runtime):
    llm = make_llm(Settings(local_model="smollm2", local_runtime=runtime, temperature=0, max_answer_tokens=24))
    assert llm._loaded.model.runtime == runtime
    answer = llm.invoke(QUESTION)
    assert "paris" in answer.content.lower()
    assert answer.usage_metadata["output_tokens"] > 0
    chunks = [c.content for c in llm.stream(QUESTION)]
    assert len([c for c in chunks if c]) >= 2 and "".join(chunks) == answer.content


@pytest.mark.slow
@pytest.mark.skipif(len(INSTALLED) < 2, reason="needs both runtimes (pip install -e '.[llama-cpp]')")
def test_both_runtimes_give_the_same_greedy_answers():
    """Same GGUF, same prompt template (same prompt tokens), temperature 0: the same answer from
    either runtime to a factual question. Open-ended text may part at a near-tie, as the kernels
    differ (the wheel's AVX2 against a native AVX-512 build): bench/runtime_compare.py measured
    32 of 40 eval answers identical, and the same share holding the gold answer."""
    answers = {}
    for runtime in INSTALLED:
        for model in ("smollm2", "gemma3-270m"):
            llm = make_llm(Settings(local_model=model, local_runtime=runtime, temperature=0, max_answer_tokens=24))
            answers[runtime, model] = [llm.invoke(q).content for q in (QUESTION, "Name three colours.")]
    for model in ("smollm2", "gemma3-270m"):
        assert answers["xllamacpp", model][0] == answers["llama-cpp", model][0]
        assert "paris" in answers["xllamacpp", model][0].lower()
        assert answers["xllamacpp", model][1].strip() and answers["llama-cpp", model][1].strip()


@pytest.mark.slow
def test_closing_the_stream_stops_the_generation_at_once():
    """What Stop in the web app does: the consumer leaves; generation ends at the next token and
    the model is free for the next question straight away."""
    llm = make_llm(Settings(local_model="smollm2", local_runtime="xllamacpp", temperature=0, max_answer_tokens=2000))
    stream = llm.stream("Write a very long story about a lighthouse keeper and his cat.")
    got = [next(stream).content for _ in range(3)]
    assert all(isinstance(g, str) for g in got)
    started = time.monotonic()
    stream.close()
    closed_in = time.monotonic() - started
    assert closed_in < 2.0, closed_in  # one token at most (a few tens of ms here), not 2000
    assert not [t for t in threading.enumerate() if t.name == "xllamacpp-stream"]
    assert llm._loaded.lock.acquire(timeout=0.1)  # the model is free
    llm._loaded.lock.release()
    short = make_llm(Settings(local_model="smollm2", local_runtime="xllamacpp", temperature=0, max_answer_tokens=16))
    assert "paris" in short.invoke(QUESTION).content.lower()


@pytest.mark.slow
def test_the_loopback_port_serves_no_one():
    """xllamacpp's engine always listens on a loopback port; a key nobody knows locks it."""
    llm = make_llm(Settings(local_model="smollm2", local_runtime="xllamacpp"))
    address = llm._loaded.model.address
    assert address.startswith("http://127.0.0.1:")
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).encode()
    request = urllib.request.Request(address + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401


@pytest.mark.slow
def test_a_model_closed_right_after_loading_is_freed():
    """The LRU may evict a model loaded a moment before. xllamacpp 2026.10 hung for good deleting
    a Server whose engine had taken no request yet; loading now runs one token through it."""
    from rag.llm.local import PLAIN_TEMPLATE
    from rag.llm.runtime_xllamacpp import load

    def load_and_close():
        for name in ("gemma3-270m", "smollm2"):
            load(str(resolve_local_model(name)), 2048, PLAIN_TEMPLATE).close()

    worker = threading.Thread(target=load_and_close, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "closing a just-loaded xllamacpp model hung"
