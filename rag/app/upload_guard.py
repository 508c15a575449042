"""ASGI middleware: request bodies are bounded before anything reads them (every mode), and Gradio's
raw upload route draws on the visitor's upload budget (public mode).

`BodyLimit`: a POST, PUT or PATCH body over RAG_MAX_REQUEST_KB (other than an upload, which
RAG_MAX_FILE_MB bounds) is answered 413 from its Content-Length, before FastAPI parses it and before
/v1's login check; a body without Content-Length is read up to the limit and no further.

`POST /gradio_api/upload` stores files in Gradio's cache before any handler of ours runs, and
anyone can call it without ever using the page. In public mode its bytes are charged to the
client address (rag/quota.py, RAG_VISITOR_UPLOAD_MB per TTL window) as they are announced; a
request over budget, or one that does not say its size, is refused with 429/411 and a reason.
The files an upload adds are charged when the app ingests them (RAG_VISITOR_UPLOAD_FILES).
"""

from __future__ import annotations

import json

from rag.app.quota import QuotaExceeded, VisitorQuotas, client_key


def _is_upload(scope) -> bool:
    return scope["path"].rstrip("/").endswith("/upload")


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH") or _is_upload(scope):
            return await self.app(scope, receive, send)
        length = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-length"), None)
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return await _refuse(send, 400, "the request's Content-Length is not a number")
            if size > self.max_bytes:
                return await _too_large(send, size, self.max_bytes)
            return await self.app(scope, receive, send)
        # no Content-Length (chunked): read at most the limit, then replay what was read
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await _too_large(send, None, self.max_bytes)
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _too_large(send, size: int | None, limit: int) -> None:
    said = f"{size / 1024:,.0f} KB" if size is not None else "more than that"
    message = (f"request refused: the body is {said}; the limit is {limit // 1024:,} KB (RAG_MAX_REQUEST_KB). "
               "Ask a shorter question or send a shorter history.")
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": "request_too_large"}}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class UploadBudget:
    def __init__(self, app, quotas: VisitorQuotas, header: str = ""):
        self.app, self.quotas, self.header = app, quotas, header.lower()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not _is_upload(scope):
            return await self.app(scope, receive, send)
        raw = scope.get("headers", [])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
        host = (scope.get("client") or (None, None))[0]
        key = client_key(host, raw, self.header)  # every line of the header, as every route reads it
        try:
            size = int(headers["content-length"])
        except (KeyError, ValueError):
            return await _refuse(send, 411, "upload refused: the request must say its size (Content-Length)")
        try:
            self.quotas.admit_upload(key, 0, size)
        except QuotaExceeded as exc:
            return await _refuse(send, 429, str(exc))
        return await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str) -> None:
    body = message.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
