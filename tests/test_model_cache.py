"""Loaded models are bounded: at most two llama.cpp models in memory (the least recently used is
closed, which frees it), and the web workspace makes one chat model per LLM settings."""

from __future__ import annotations

import threading
import urllib.request

import pytest

import rag.llm.local as local
from rag.app.workspace import Workspace
from rag.llm.local import Loaded, LoadedModels, LocalChatModel
from rag.settings import Settings


class _FakeModel:
    """Stands in for a runtime's loaded model where only loading and closing are tested."""

    def __init__(self, path: str):
        self.path, self.closed = path, False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_loads(monkeypatch):
    loads: list[str] = []

    def load(runtime: str, path: str, n_ctx: int) -> Loaded:
        loads.append(path)
        return Loaded(_FakeModel(path), has_template=True)

    monkeypatch.setattr(local, "_load", load)
    return loads


def test_lru_closes_the_least_recently_used_model(tmp_path, fake_loads):
    a, b, c = (tmp_path / f"{name}.gguf" for name in "abc")
    models = LoadedModels(size=2)
    first = models.get(a, 512)
    models.get(b, 512)
    assert models.get(a, 512) is first  # a hit: a becomes the most recently used
    models.get(c, 512)  # evicts b, not a
    assert [p.rsplit("/", 1)[-1] for p in fake_loads] == ["a.gguf", "b.gguf", "c.gguf"]
    assert [k[1].rsplit("/", 1)[-1] for k in models.keys()] == ["a.gguf", "c.gguf"]
    assert not first.closed and not first.model.closed
    models.get(b, 512)  # evicts a, and closes it
    assert first.closed and first.model.closed
    models.clear()
    assert models.keys() == []


def test_closing_waits_for_a_generation_in_progress(tmp_path, fake_loads):
    models = LoadedModels(size=1)
    busy = models.get(tmp_path / "a.gguf", 512)
    busy.lock.acquire()  # a generation holds the model's lock
    evicting = threading.Thread(target=models.get, args=(tmp_path / "b.gguf", 512))
    evicting.start()
    evicting.join(0.3)
    assert evicting.is_alive() and not busy.model.closed
    busy.lock.release()
    evicting.join(5)
    assert busy.model.closed


def test_a_chat_model_whose_weights_were_closed_loads_them_again(tmp_path, fake_loads, monkeypatch):
    monkeypatch.setattr(local, "LOADED", LoadedModels(size=1))
    chat = LocalChatModel(model_path=str(tmp_path / "a.gguf")).load()
    first = chat._loaded
    LocalChatModel(model_path=str(tmp_path / "b.gguf")).load()  # evicts a
    assert first.closed
    with chat._using() as loaded:
        assert loaded is not first and not loaded.closed
    assert len(fake_loads) == 3


def test_workspace_makes_one_chat_model_per_llm_settings(settings, monkeypatch):
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    ws = Workspace(settings)
    remote = settings.model_copy(update={"llm": "openai", "openai_base_url": "http://127.0.0.1:9/v1"})
    first = ws.llm(remote)
    assert ws.llm(remote.model_copy(update={"k": 9})) is first  # retrieval settings do not matter
    warmer = ws.llm(remote.model_copy(update={"temperature": 0.9}))
    assert warmer is not first and warmer.temperature == 0.9
    for i in range(6):  # bounded: the oldest are dropped
        ws.llm(remote.model_copy(update={"openai_model": f"m{i}"}))
    assert len(ws._llms) == 4 and ws.llm(remote) is not first


@pytest.mark.slow
def test_real_models_are_unloaded_when_evicted(monkeypatch):
    """With room for one model, loading Gemma closes SmolLM2 (llama.cpp frees its weights), and a
    SmolLM2 chat model made before still answers: it loads the weights again."""
    monkeypatch.setattr(local, "LOADED", LoadedModels(size=1))
    from rag.llm import make_llm

    smol = make_llm(Settings(local_model="smollm2", local_runtime="xllamacpp", temperature=0, max_answer_tokens=16))
    old = smol._loaded
    make_llm(Settings(local_model="gemma3-270m", local_runtime="xllamacpp", temperature=0, max_answer_tokens=16))
    assert old.closed and old.model._server is None  # xllamacpp freed the model...
    with pytest.raises(OSError):  # ...and its engine stopped listening
        urllib.request.urlopen(old.model.address + "/health", timeout=5)
    assert smol.invoke("What is the capital of France? Answer in one word.").content.strip()
    assert smol._loaded is not old
    local.LOADED.clear()
