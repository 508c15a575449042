"""How the web app is started, as docs/public-mode.md and docs/deploy.md say: `rag serve --public` with RAG_AUTH and
RAG_MAX_FILE_MB, and `python app.py` on a Hugging Face Space (SPACE_ID set). Each a real server
process on a free loopback port, reached over HTTP as a browser and gradio_client reach it.
"""

from __future__ import annotations

import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import child_env, free_port, rag_cmd, running_server
from docgen import make_text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_NOTE = "Public demo: your uploads go to a private collection of your session"
CALL_TIMEOUT = 300


def call(client, *args, api_name: str, **kwargs):
    return client.submit(*args, api_name=api_name, **kwargs).result(timeout=CALL_TIMEOUT)


def status(url: str, opener=None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=30) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def logged_in(url: str, user: str, password: str):
    """An HTTP opener holding the session cookie of Gradio's login form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    data = urllib.parse.urlencode({"username": user, "password": password}).encode()
    with opener.open(urllib.request.Request(url + "login", data=data), timeout=30) as resp:
        assert resp.status == 200
    return opener


def page_texts(config: dict) -> str:
    """Every Markdown value and label of the page's components, one string."""
    out = []
    for component in config["components"]:
        props = component.get("props", {})
        out += [str(props.get(k)) for k in ("value", "label") if props.get(k)]
    return "\n".join(out)


def two_visitors_are_isolated(url: str, tmp_path: Path, auth=None) -> None:
    """Public mode, observed: what one session uploads, another session does not see."""
    from gradio_client import Client, handle_file

    alice = Client(url, auth=auth, verbose=False, download_files=False)
    bob = Client(url, auth=auth, verbose=False, download_files=False)
    note = make_text(tmp_path / "alice" / "heron.txt", "The vault code for Project Heron is 7431.")
    report, *_ = call(alice, files=[handle_file(str(note))], api_name="/upload")
    assert "heron.txt" in report and "added" in report, report
    assert {d["source"]: d["deletable"] for d in call(alice, api_name="/documents")} == {"heron.txt": True}
    assert call(bob, api_name="/documents") == []


def test_rag_serve_public_with_rag_auth_and_rag_max_file_mb(tmp_path):
    from gradio_client import Client, handle_file

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = child_env(RAG_DATA_DIR=str(tmp_path / "data"), RAG_AUTH="keeper:lantern", RAG_MAX_FILE_MB="0.05")
    argv = [*rag_cmd(), "serve", "--public", "--host", "127.0.0.1", "--port", str(port)]
    with running_server(argv, url, tmp_path / "serve.log", "rag serve --public", timeout=240, env=env, cwd=tmp_path):
        # RAG_AUTH: the login page, and nothing of the app without logging in
        code, body = status(url)
        assert code == 200 and '"auth_required":true' in body.replace(" ", "")
        assert status(url + "config")[0] == 401
        with pytest.raises(Exception, match="(?i)login"):
            Client(url, auth=("keeper", "wrong"), verbose=False)

        # --public: the page says so, and two sessions do not see each other's uploads
        opener = logged_in(url, "keeper", "lantern")
        code, body = status(url + "config", opener)
        assert code == 200, body[:300]
        assert PUBLIC_NOTE in page_texts(json.loads(body))
        two_visitors_are_isolated(url, tmp_path, auth=("keeper", "lantern"))

        # RAG_MAX_FILE_MB=0.05: a 60 KB upload is refused before it is stored, a small one is not
        client = Client(url, auth=("keeper", "lantern"), verbose=False, download_files=False)
        big = make_text(tmp_path / "up" / "big.txt", "The harbour crane lifts forty tonnes. " * 1700)
        assert 0.05 * 2**20 < big.stat().st_size < 0.07 * 2**20
        with pytest.raises(Exception, match="(?i)too large|exceeds|size|413"):
            call(client, files=[handle_file(str(big))], api_name="/upload")
        small = make_text(tmp_path / "up" / "small.txt", "The harbour crane lifts forty tonnes.")
        report, *_ = call(client, files=[handle_file(str(small))], api_name="/upload")
        assert "small.txt" in report and "added" in report
        assert {d["source"] for d in call(client, api_name="/documents")} == {"small.txt"}
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_python_app_py_on_a_space_is_public(tmp_path):
    """`python app.py` as a Hugging Face Space runs it: SPACE_ID set, the port from Gradio's own
    GRADIO_SERVER_PORT. Public mode is on without being asked for."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = child_env(RAG_DATA_DIR=str(tmp_path / "data"), SPACE_ID="someone/groundwork-rag",
                    GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1")
    argv = [sys.executable, str(ROOT / "app.py")]
    with running_server(argv, url, tmp_path / "app.log", "python app.py", timeout=240, env=env, cwd=tmp_path):
        code, body = status(url + "config")
        assert code == 200, body[:300]
        assert PUBLIC_NOTE in page_texts(json.loads(body))
        two_visitors_are_isolated(url, tmp_path)
    log = (tmp_path / "app.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_python_app_py_elsewhere_is_private(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = child_env(RAG_DATA_DIR=str(tmp_path / "data"), GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1")
    env.pop("SPACE_ID", None)
    with running_server([sys.executable, str(ROOT / "app.py")], url, tmp_path / "app.log", "python app.py",
                        timeout=240, env=env, cwd=tmp_path):
        code, body = status(url + "config")
        assert code == 200 and PUBLIC_NOTE not in page_texts(json.loads(body))
