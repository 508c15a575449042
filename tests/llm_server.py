"""A real OpenAI-compatible LLM server for the tests, with nothing to compile: llama.cpp's own
server (tools/server), as shipped in the xllamacpp wheel, listening on HTTP.

    python tests/llm_server.py --model PATH --port N [--n_ctx 2048]

Serves /v1/models, /v1/chat/completions (streaming too) and /health until SIGTERM or SIGINT.
No API key: like llama_cpp.server, it answers any key and any model name.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--n_ctx", type=int, default=2048)
    args = parser.parse_args()

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_ctx = args.n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = os.cpu_count() or 1
    params.hostnames = [args.host]
    params.port = args.port
    params.verbosity = 0
    params.warmup = False
    params.fit_params = False
    params.ui = False
    server = xllamacpp.Server(params)
    print(f"listening at {server.listening_address}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    del server  # stops listening, frees the model


if __name__ == "__main__":
    main()
