"""ASGI middleware: Gradio's raw upload route draws on the visitor's upload budget (public mode).

`POST /gradio_api/upload` stores files in Gradio's cache before any handler of ours runs, and
anyone can call it without ever using the page. In public mode its bytes are charged to the
client address (rag/quota.py, RAG_VISITOR_UPLOAD_MB per TTL window) as they are announced; a
request over budget, or one that does not say its size, is refused with 429/411 and a reason.
The files an upload adds are charged when the app ingests them (RAG_VISITOR_UPLOAD_FILES).
"""

from __future__ import annotations

from rag.app.quota import QuotaExceeded, VisitorQuotas, client_key


class UploadBudget:
    def __init__(self, app, quotas: VisitorQuotas, header: str = ""):
        self.app, self.quotas, self.header = app, quotas, header.lower()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].rstrip("/").endswith("/upload"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = (scope.get("client") or (None, None))[0]
        key = client_key(host, headers, self.header)
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
