"""Network checks the faces share, without importing Gradio (so `rag serve` fails fast)."""

from __future__ import annotations

import socket

from rag.errors import RagError


def check_port_free(host: str | None, port: int | None) -> None:
    """A RagError naming --port when the port is taken (Gradio's own error is a traceback telling
    the user to pass `server_port` to `launch()`). No port given: Gradio finds a free one."""
    if port is None:
        return
    where = host or "127.0.0.1"
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is not "in use"
        try:
            sock.bind((where, port))
        except OSError as exc:
            raise RagError(f"port {port} on {where} is in use ({exc.strerror or exc}): "
                           "choose another with --port N") from None
