"""The web app over HTTP, as gradio_client and a browser reach it: named API endpoints, uploads
and cited answers, isolation of two real sessions in public mode, and `rag serve` with --share
(no share server reachable) and --auth.

The app runs in-process on a free loopback port with the real packaged embedder and the default
packaged LLM (Gemma 3 270M);
`rag serve` runs in a subprocess. Two gradio_client.Client instances are two browser sessions
(two session hashes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, rag_cmd
from docgen import make_pdf, make_text

from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow  # a real Gradio server, the real embedder and local model

ROOT = Path(__file__).resolve().parents[1]
SECRET_PDF = "heron-vault.pdf"
SECRET_QUESTION = "What is the vault code for Project Heron?"
ANSWER_KEYS = {"answer", "citations", "rewritten_query", "refused"}
CITATION_KEYS = {"n", "source", "page", "chunk_id", "text", "score"}
PREDICT_TIMEOUT = 600  # the local model shares two cores with other jobs


def call(client: Client, *args, api_name: str, **kwargs):
    return client.submit(*args, api_name=api_name, **kwargs).result(timeout=PREDICT_TIMEOUT)


# ------------------------------------------------------------------ the app, in-process

@pytest.fixture(scope="module")
def app(tmp_path_factory, real_embedder):
    from ingest.pipeline import Ingestor
    from rag.settings import Settings
    from rag.store import open_store
    from rag.app.web import build_app

    root = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("RAG_"):
                mp.delenv(key)
        mp.chdir(root)
        settings = Settings(data_dir=root / "data", collection="web", public=True, temperature=0.0)
        handbook = make_text(
            root / "owner" / "handbook.md",
            "# Lighthouse handbook\n\nThe lens of the Skarvøy lighthouse is cleaned every Tuesday "
            "morning with a soft chamois cloth and distilled water.\n",
        )
        shared = Ingestor(open_store(settings, real_embedder), settings).ingest_file(handbook, source="handbook.md")
        assert shared.status == "added"

        demo = build_app(settings)
        port = free_port()
        demo.queue()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
        try:
            yield {"url": f"http://127.0.0.1:{port}/", "root": root, "demo": demo}
        finally:
            demo.close()


@pytest.fixture(scope="module")
def alice(app):
    """Session A: uploaded a two-page PDF whose second page holds a secret."""
    client = Client(app["url"], verbose=False)
    pdf = make_pdf(
        app["root"] / "alice" / SECRET_PDF,
        ["Archive of Project Heron. Cover page.", "The vault code for Project Heron is 7431."],
    )
    report, table, choices, files = call(client, files=[handle_file(str(pdf))], api_name="/upload")
    return {"client": client, "report": report, "table": table, "choices": choices}


@pytest.fixture(scope="module")
def alice_answer(alice) -> dict:
    return call(alice["client"], SECRET_QUESTION, api_name="/ask")


def test_named_endpoints(app):
    client = Client(app["url"], verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/ask", "/upload", "/documents", "/delete"}
    ask = api["named_endpoints"]["/ask"]
    assert [p["parameter_name"] for p in ask["parameters"]] == ["question"]
    assert [p["parameter_name"] for p in api["named_endpoints"]["/upload"]["parameters"]] == ["files"]
    # the chat handler and collection switching are for the page only
    assert not api.get("unnamed_endpoints")


def test_upload_reports_each_file_and_lists_it(alice):
    assert SECRET_PDF in alice["report"] and "added" in alice["report"]
    rows = {row[0]: row for row in alice["table"]["data"]}
    assert alice["table"]["headers"] == ["document", "chunks", "read", "access", ""]
    assert rows[SECRET_PDF][3] == "yours" and rows[SECRET_PDF][1] >= 1
    assert rows[SECRET_PDF][2].startswith("2 pages, ") and rows[SECRET_PDF][4] == "delete"  # what reading found
    assert rows["handbook.md"][3] == "shared (read-only)" and "chars" in rows["handbook.md"][2]
    assert [c[0] for c in alice["choices"]["choices"]] == [SECRET_PDF]  # only her own is deletable
    docs = {d["source"]: d for d in call(alice["client"], api_name="/documents")}
    assert docs[SECRET_PDF]["deletable"] is True and docs[SECRET_PDF]["read"].startswith("2 pages, ")
    assert docs["handbook.md"]["deletable"] is False


@pytest.mark.slow
def test_ask_returns_a_cited_answer_with_the_right_page(alice_answer):
    answer = alice_answer
    assert ANSWER_KEYS <= set(answer), answer
    assert answer["refused"] is False, answer
    assert answer["rewritten_query"] is None  # no history, nothing to rewrite
    assert answer["answer"].strip()
    assert answer["citations"], answer
    for c in answer["citations"]:
        assert CITATION_KEYS <= set(c), c
        assert isinstance(c["n"], int) and c["n"] >= 1
        assert isinstance(c["score"], float) and c["chunk_id"] and c["text"]
    secret = [c for c in answer["citations"] if c["source"] == SECRET_PDF]
    assert secret, answer["citations"]
    assert any(c["page"] == 2 and "7431" in c["text"] for c in secret), secret  # 1-based: the second page


@pytest.mark.slow
def test_another_session_cannot_see_or_read_the_upload(app, alice, alice_answer):
    bob = Client(app["url"], verbose=False)
    assert bob.session_hash != alice["client"].session_hash

    docs = {d["source"]: d["deletable"] for d in call(bob, api_name="/documents")}
    assert docs == {"handbook.md": False}

    answer = call(bob, SECRET_QUESTION, api_name="/ask")
    assert ANSWER_KEYS <= set(answer)
    assert "7431" not in answer["answer"]
    assert {c["source"] for c in answer["citations"]} <= {"handbook.md"}
    assert all("7431" not in c["text"] for c in answer["citations"])

    # bob cannot delete alice's document: the page offers him nothing to delete, and a request
    # naming it anyway is rejected (Gradio refuses a value outside the dropdown's choices)
    with pytest.raises(Exception, match="(?i)choices|not in the list"):
        call(bob, SECRET_PDF, api_name="/delete")
    assert SECRET_PDF in {d["source"] for d in call(alice["client"], api_name="/documents")}
    # alice, asking again after all that, still gets her secret from her page 2
    again = call(alice["client"], SECRET_QUESTION, api_name="/ask")
    assert any(c["source"] == SECRET_PDF and c["page"] == 2 and "7431" in c["text"] for c in again["citations"]), again


def test_same_file_name_in_two_sessions_stays_separate(app, alice):
    carol = Client(app["url"], verbose=False)
    pdf = make_pdf(app["root"] / "carol" / SECRET_PDF, ["Carol's notes: the heron nests by the lake."])
    call(carol, files=[handle_file(str(pdf))], api_name="/upload")
    assert {d["source"]: d["deletable"] for d in call(carol, api_name="/documents")} == {
        "handbook.md": False,
        SECRET_PDF: True,
    }
    table, choices = call(carol, SECRET_PDF, api_name="/delete")
    assert [row[0] for row in table["data"]] == ["handbook.md"]
    assert choices["choices"] == []
    # alice's file of the same name is untouched
    assert SECRET_PDF in {d["source"] for d in call(alice["client"], api_name="/documents")}


@pytest.mark.slow
def test_out_of_corpus_question_is_refused(app):
    client = Client(app["url"], verbose=False)
    answer = call(client, "Who won the football world cup final in 1998?", api_name="/ask")
    assert answer["refused"] is True, answer
    assert answer["citations"] == []


# ------------------------------------------------------------------ rag serve in a subprocess

class Server:
    """`rag serve ...` in a subprocess, its combined output collected line by line."""

    def __init__(self, tmp_path: Path, *args: str, port: int | None = None):
        self.port = port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(
            RAG_DATA_DIR=str(tmp_path / "serve-data"),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            GRADIO_ANALYTICS_ENABLED="False",
            HF_HUB_OFFLINE="1",
            # a share server that is certainly unreachable, even on a machine with internet access:
            # the test never opens a real public tunnel
            GRADIO_SHARE_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
        )
        self.proc = subprocess.Popen(
            [*rag_cmd(), "serve", "--port", str(self.port), *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                self._reader.join(5)
                match = re.search(pattern, self.output)
                if match:
                    return match
                pytest.fail(f"rag serve exited with {self.proc.returncode} before printing {pattern!r}:\n{self.output[-3000:]}")
            time.sleep(0.5)
        pytest.fail(f"rag serve did not print {pattern!r} within {timeout:.0f} s:\n{self.output[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)


def get(url: str, timeout: float = 30) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


@pytest.mark.slow
def test_serve_share_without_a_share_server_serves_locally(tmp_path):
    server = Server(tmp_path, "--share")
    try:
        match = server.wait_for(r"Could not create a share link[^\n]*Still serving locally at (http://\S+)", timeout=180)
        url = match.group(1)
        assert url.startswith(f"http://127.0.0.1:{server.port}")
        status, body = get(url)
        assert status == 200 and "<html" in body.lower()
        assert server.proc.poll() is None  # still serving
        assert "Share link:" not in server.output
        assert "Traceback" not in server.output
    finally:
        server.stop()


@pytest.mark.slow
def test_serve_auth_requires_a_login(tmp_path):
    server = Server(tmp_path, "--auth", "alice:secret")
    try:
        url = server.wait_for(r"Running on local URL:\s+(http://\S+)", timeout=180).group(1).rstrip("/") + "/"
        assert "share=True" not in server.output  # Gradio's own advice is not printed (issue 27)
        status, body = get(url)
        assert status == 200
        assert '"auth_required":true' in body.replace(" ", "")  # the login page, not the app
        assert "Ask your documents" not in body
        for route in ("config", "gradio_api/info"):
            status, body = get(url + route)
            assert status == 401, (route, status, body[:300])

        with pytest.raises(Exception, match="(?i)credentials|login"):
            Client(url, verbose=False)
        with pytest.raises(Exception, match="(?i)login"):
            Client(url, auth=("alice", "wrong"), verbose=False)
        client = Client(url, auth=("alice", "secret"), verbose=False)
        assert call(client, api_name="/documents") == []
        assert "/ask" in client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["nopassword", ":secret", "alice:"])
def test_serve_malformed_auth_fails_with_one_line(tmp_path, bad):
    server = Server(tmp_path, "--auth", bad)
    try:
        code = server.proc.wait(timeout=180)
    finally:
        server.stop()
    out = server.output.strip()
    assert code != 0
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--auth" in errors[0], out
    assert "Running on" not in out
