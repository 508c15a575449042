"""A hostile client of a Gradio app: the queue protocol spoken by hand, as a browser's JavaScript does.

`POST /gradio_api/queue/join` with fn_index, trigger_id, any session_hash and a data list; then
`GET /gradio_api/queue/data?session_hash=...` streams server-sent events until process_completed.
No gradio_client: nothing the page locks (private endpoints, non-interactive boxes) is respected.
`local_address` makes the connection come from another loopback address (127.0.0.2 ...): another
visitor, as far as the server can tell.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Result:
    success: bool
    data: list | None  # the outputs of process_completed
    error: str | None = None  # the queue's refusal or the event's error text
    messages: list = field(default_factory=list)  # every SSE message, in order


class RawClient:
    def __init__(self, base_url: str, local_address: str | None = None, timeout: float = 600):
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)
        self.config = self.http.get("/config").raise_for_status().json()
        self.components = {c["id"]: c for c in self.config["components"]}

    def close(self) -> None:
        self.http.close()

    # --- finding events as the page's JavaScript does ---------------------------------------
    def component_id(self, elem_id: str | None = None, label: str | None = None) -> int:
        for cid, comp in self.components.items():
            props = comp.get("props", {})
            if (elem_id and props.get("elem_id") == elem_id) or (label and props.get("label") == label):
                return cid
        raise KeyError(elem_id or label)

    def event(self, target: int, trigger: str) -> tuple[int, dict]:
        """(fn_index, dependency) of the event `trigger` ("submit", "click"...) on component target."""
        for index, dep in enumerate(self.config["dependencies"]):
            if [target, trigger] in [list(t) for t in dep["targets"]]:
                return dep.get("id", index), dep
        raise KeyError((target, trigger))

    def named(self, api_name: str) -> tuple[int, dict]:
        for index, dep in enumerate(self.config["dependencies"]):
            if dep.get("api_name") == api_name:
                return dep.get("id", index), dep
        raise KeyError(api_name)

    # --- the protocol ------------------------------------------------------------------------
    def join(self, fn_index: int, data: list, session_hash: str | None = None, trigger_id: int | None = None,
             event_data: dict | None = None, headers=None) -> tuple[str, httpx.Response]:
        session_hash = session_hash or uuid.uuid4().hex[:11]
        body = {"data": data, "fn_index": fn_index, "trigger_id": trigger_id, "session_hash": session_hash,
                "event_data": event_data}
        return session_hash, self.http.post("/gradio_api/queue/join", json=body, headers=headers)

    def read(self, session_hash: str) -> Result:
        """Read the session's event stream until its event completes."""
        messages = []
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session_hash}) as resp:
            resp.raise_for_status()
            for line in resp.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                messages.append(msg)
                if msg.get("msg") == "process_completed":
                    output = msg.get("output") or {}
                    return Result(bool(msg.get("success")), output.get("data"), output.get("error"), messages)
                if msg.get("msg") == "close_stream":
                    break
        return Result(False, None, "stream closed without process_completed", messages)

    def call(self, fn_index: int, data: list, session_hash: str | None = None, trigger_id: int | None = None,
             event_data: dict | None = None, headers=None) -> Result:
        """`headers`: extra request headers for the join (a list of pairs may repeat a name)."""
        session_hash, resp = self.join(fn_index, data, session_hash, trigger_id, event_data, headers)
        if resp.status_code != 200:
            return Result(False, None, f"join refused: {resp.status_code} {resp.text}")
        return self.read(session_hash)

    def upload(self, *paths: Path, headers=None) -> list[str]:
        """POST /gradio_api/upload: the server's cached paths of the files."""
        files = [("files", (Path(p).name, Path(p).read_bytes())) for p in paths]
        return self.http.post("/gradio_api/upload", files=files, headers=headers).raise_for_status().json()

    def file_url(self, server_path: str) -> str:
        return f"/gradio_api/file={server_path}"


def file_data(server_path: str, name: str) -> dict:
    """The FileData a File component sends for an uploaded file."""
    return {"path": server_path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def chat_text(result: Result) -> str:
    """The last assistant message of a respond event's final output (chatbot is output 0)."""
    chat = (result.data or [None])[0] or []
    if not chat:
        return ""
    last = chat[-1]
    content = last.get("content") if isinstance(last, dict) else last
    if isinstance(content, list):  # Gradio 6: [{"type": "text", "text": ...}]
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return unescape(str(content))


def unescape(markdown: str) -> str:
    """Markdown made inert by rag.app.markup, as the reader sees it (backslash escapes removed)."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)
