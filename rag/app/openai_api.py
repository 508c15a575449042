"""An OpenAI-compatible REST API on the web app's server: any OpenAI client, notebook or tool can
ask the documents.

    GET  /v1/models            one model per collection: `groundwork-rag` (RAG_COLLECTION) and,
                               in private mode, `groundwork-rag:<collection>` for each other one
    POST /v1/chat/completions  the last user message is the question, earlier user/assistant
                               turns are the history (follow-ups are rewritten as in the chat);
                               `stream: true` sends Server-Sent Events as OpenAI does

The answer is the chain's answer, the same as the web chat's. Its sources travel in extra fields
OpenAI clients keep (`response.model_extra` in the Python client): on the completion (and on the
last streamed chunk) `citations` (a list of {n, source, page, chunk_id, text, score,
inferred, ...}) and `refused` (true when the documents do not hold the answer).

Auth: with RAG_AUTH=user:password set, every request needs `Authorization: Bearer user:password`
(the OpenAI client's api_key) or HTTP Basic with the same login; otherwise 401.

Public mode (RAG_PUBLIC): the caller cannot choose the collection or the model: the `model` field is
accepted and ignored, answers come from the shared collection only (read-only; this API writes
nothing), temperature and max_tokens are the server's; each address's questions count against the
same quotas as the web page's (rag/quota.py), and going over them is a 429 (for a stream too: the
slot is taken before the response starts). Error messages pass through rag.app.policy.redact, as the
chat's do: no OPENAI_BASE_URL or model path reaches a public caller.

Every mode: a body over RAG_MAX_REQUEST_KB is a 413 before it is parsed or the login checked
(rag/app/upload_guard.BodyLimit); a question over RAG_MAX_QUESTION_CHARS is a 400; a collection
that does not exist (yet) is a 404 saying so.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rag.app import policy
from rag.errors import RagError

log = logging.getLogger(__name__)

MODEL = "groundwork-rag"
_API_CONCURRENCY = 2  # answers generated at once through the API (2 cores; the chat has its own queue)


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": None, "code": self.code}}
        headers = {"WWW-Authenticate": 'Bearer realm="groundwork-rag"'} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


# --- pure helpers (tested without a server) -----------------------------------------------------
def check_auth(header: str | None, auth: tuple[str, str] | None) -> bool:
    """Bearer `user:password` or Basic with that login, compared in constant time."""
    if auth is None:
        return True
    expected = f"{auth[0]}:{auth[1]}"
    scheme, _, value = (header or "").partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.encode(), expected.encode())


def split_messages(messages: list) -> tuple[str, list[tuple[str, str]]]:
    """(question, history) from OpenAI chat messages: the last user message is the question; each
    earlier user message paired with the assistant reply after it is one history turn. System
    messages are ignored (the chain has its own prompt)."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", code="invalid_messages")
    turns: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages:
        if not isinstance(m, dict):
            raise ApiError(400, "each message must be an object with 'role' and 'content'", code="invalid_messages")
        role, text = m.get("role"), _text(m.get("content"))
        if role == "user":
            if pending is not None:
                turns.append((pending, ""))
            pending = text
        elif role == "assistant" and pending is not None:
            turns.append((pending, text))
            pending = None
    if pending is None or not pending.strip():
        raise ApiError(400, "the last message must be a non-empty user message (the question)", code="invalid_messages")
    return pending.strip(), turns


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def citations_json(answer, shown) -> list[dict]:
    out = []
    for c in answer.citations:
        data = asdict(c)
        data["source"] = shown(c.source)
        out.append(data)
    return out


# --- the API ------------------------------------------------------------------------------------
class OpenAIApi:
    """The routes over one Workspace (rag.app.workspace)."""

    def __init__(self, ws, auth: tuple[str, str] | None):
        self.ws = ws
        self.settings = ws.settings
        self.public = ws.settings.public
        self.auth = auth
        self._slots = threading.BoundedSemaphore(_API_CONCURRENCY)

    # --- what the caller may ask for ------------------------------------------------------
    def models(self) -> list[str]:
        if self.public:
            return [MODEL]
        return [MODEL] + [f"{MODEL}:{name}" for name in self.ws.collections() if name != self.settings.collection]

    def collection_for(self, model) -> str:
        """The collection a `model` field names. Names other than ours (clients send their default,
        e.g. gpt-4o-mini) mean the default collection; in public mode the field is ignored."""
        if self.public or not isinstance(model, str) or not model.startswith(MODEL + ":"):
            return self.settings.collection
        name = model[len(MODEL) + 1:]
        if name not in self.ws.collections():
            raise ApiError(404, f"model {model!r} does not exist: no collection {name!r} (see GET /v1/models)",
                           code="model_not_found")
        return name

    def overrides(self, body: dict) -> dict:
        if self.public:
            return {}
        out = {}
        if isinstance(body.get("temperature"), (int, float)):
            out["temperature"] = min(2.0, max(0.0, float(body["temperature"])))
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(limit, int) and limit > 0:
            out["max_answer_tokens"] = max(16, min(limit, 4096))
        return out

    def shown(self, source: str) -> str:
        return Path(source).name if self.public else source

    def chain(self, collection: str, overrides: dict):
        from rag.answer import build

        settings = self.settings.model_copy(update=overrides)
        store = self.ws.store(collection, create=False)
        if store is None:
            return None
        return build(settings, stores=[store], llm=self.ws.llm(settings))

    # --- answering ------------------------------------------------------------------------
    def prepare(self, body: dict) -> tuple[str, list, str, dict]:
        """(question, history, collection, settings overrides), or an ApiError (a 4xx) for a bad request."""
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        question, history = split_messages(body.get("messages"))
        too_long = policy.question_too_long(question, self.settings)
        if too_long:
            raise ApiError(400, too_long, code="question_too_long")
        collection = self.collection_for(body.get("model"))
        if self.ws.store(collection, create=False) is None:
            raise ApiError(404, f"collection {collection!r} does not exist yet: no documents were added to it",
                           code="model_not_found")
        return question, history, collection, self.overrides(body)

    def reply(self, prepared: tuple):
        """The chain's Reply for a prepared request (text pieces, then the final Answer)."""
        question, history, collection, overrides = prepared
        chain = self.chain(collection, overrides)
        if chain is None:  # deleted since `prepare` looked
            raise ApiError(404, f"collection {collection!r} does not exist", code="model_not_found")
        return chain.reply(question, history)

    def quota(self, client: str | None):
        """Public mode: one question slot of the caller's address (QuotaExceeded when over)."""
        import contextlib

        if not self.public or client is None:
            return contextlib.nullcontext()
        return self.ws.quotas.question(client)

    def complete(self, body: dict, client: str | None = None) -> dict:
        prepared = self.prepare(body)
        with self.quota(client), self._slots:
            answer = self.reply(prepared).answer()
        return {
            "id": _completion_id(), "object": "chat.completion", "created": int(time.time()),
            "model": self._model_name(body),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": None,
            "citations": citations_json(answer, self.shown),
            "refused": answer.refused,
        }

    def stream(self, body: dict, quota=None) -> Iterator[str]:
        """SSE lines. The chain streams the model's words; the final Answer may differ (markers
        normalised, repeats dropped), so the last chunk carries the citations and the finished
        answer's text (`answer`) for clients that want it exact."""
        cid, created, model = _completion_id(), int(time.time()), self._model_name(body)

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        prepared = self.prepare(body)
        if quota is not None:
            quota.__enter__()  # QuotaExceeded here, at the first next(): `_start_stream` answers 429
        entered = quota is not None
        try:
            self._slots.acquire()
        except BaseException:
            if entered:
                quota.__exit__(None, None, None)
            raise
        try:
            yield chunk({"role": "assistant", "content": ""})
            reply = self.reply(prepared)
            for piece in reply:
                yield chunk({"content": piece})
            answer = reply.answer()
            yield chunk({}, "stop", citations=citations_json(answer, self.shown), refused=answer.refused,
                        answer=answer.answer)
        except (RagError, ApiError) as exc:
            message = self.redact(exc.message if isinstance(exc, ApiError) else str(exc))
            yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"
        except Exception as exc:  # a bug: the stream ends with an error event, the traceback goes to the log
            log.exception("API answer failed")
            message = self.redact(f"{type(exc).__name__}: {exc}")
            yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"
        finally:
            if entered:
                quota.__exit__(None, None, None)
            self._slots.release()
        yield "data: [DONE]\n\n"

    def redact(self, message: str) -> str:
        return policy.redact(message, self.settings)

    def _model_name(self, body: dict) -> str:
        model = body.get("model")
        return MODEL if self.public or not isinstance(model, str) or not model.startswith(MODEL) else model

    # --- FastAPI --------------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter(prefix="/v1", dependencies=[Depends(self._authorise)])

        @router.get("/models")
        def list_models():
            created = int(time.time())
            return {"object": "list", "data": [
                {"id": name, "object": "model", "created": created, "owned_by": "groundwork-rag"}
                for name in self.models()
            ]}

        @router.post("/chat/completions")
        def chat_completions(body: dict, request: Request):
            from rag.app.quota import QuotaExceeded, client_key

            client = client_key(getattr(request.client, "host", None), request.headers,
                                getattr(self.settings, "client_ip_header", ""))
            try:
                if body.get("stream"):
                    return self._start_stream(body, client)
                return self.complete(body, client)
            except ApiError as exc:
                exc.message = self.redact(exc.message)
                return exc.response()
            except QuotaExceeded as exc:
                return ApiError(429, str(exc), "rate_limit_exceeded", "rate_limit_exceeded").response()
            except RagError as exc:
                return ApiError(500, self.redact(str(exc)), "server_error").response()
            except Exception as exc:  # a bug: a JSON 500 without config in it; the traceback goes to the log
                log.exception("API answer failed")
                return ApiError(500, self.redact(f"{type(exc).__name__}: {exc}"), "server_error").response()

        return router

    def _start_stream(self, body: dict, client: str | None = None) -> StreamingResponse:
        import itertools

        # The generator runs to its first chunk here: a bad request (4xx) and a quota refusal (429)
        # are raised before any byte of a 200 is sent. From then on it is suspended inside its
        # try, so its `finally` (slot and quota released) runs when it ends or is closed/collected.
        events = self.stream(body, self.quota(client))
        first = next(events)
        return StreamingResponse(itertools.chain([first], events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _authorise(self, request: Request) -> None:
        if not check_auth(request.headers.get("authorization"), self.auth):
            raise HTTPException(
                401,
                detail={"message": "this server needs RAG_AUTH's login: api_key='user:password' (Bearer) or HTTP Basic",
                        "type": "invalid_request_error", "code": "invalid_api_key"},
                headers={"WWW-Authenticate": 'Bearer realm="groundwork-rag"'},
            )


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def api_routes(ws, auth: tuple[str, str] | None) -> list:
    """The /v1 routes, for FastAPI(routes=...) (Gradio's launch(app_kwargs=...)): they come before
    Gradio's own routes."""
    return OpenAIApi(ws, auth).router().routes
