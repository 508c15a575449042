"""Latency under concurrency: N chat sessions asking through /ask while M sessions upload through /upload.

    python bench/concurrency_latency.py                      # starts `rag serve` with data/samples
    python bench/concurrency_latency.py --model gemma3-270m --max-answer-tokens 256
    python bench/concurrency_latency.py --url http://127.0.0.1:7860/   # an app already running

Without --url it starts `rag serve` on a free loopback port with a fresh data folder in /tmp and
the sample documents preloaded (RAG_PRELOAD=data/samples), then sends one warm-up question (it
loads the local model, so it is timed apart). Every session is its own gradio_client.Client,
connected first, then all released at once. Prints p50/p95/max latency of chat turns and of
uploads, throughput, errors, and whether every uploaded document is listed afterwards.

With --url the uploads (distinct generated Markdown files) are added to that app's collection
(or, in public mode, to each uploading session's own).
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [  # about data/samples; the last two are answered nowhere there and should be refused
    "How often are the lens prisms cleaned?",
    "How many blasts does the fog horn sound?",
    "When was the granite tower first lit?",
    "How much does an adult ticket cost?",
    "What must you do before touching the lens?",
    "When is the compressor of the fog horn serviced?",
    "How many steps lead to the gallery?",
    "Which keeper logged the storm when the standby light was used?",
    "Who won the football world cup final in 1998?",
    "What is the boiling point of tungsten?",
]
TOPICS = ["beekeeping", "glacier survey", "bridge inspection", "orchard pruning", "radio mast",
          "salmon ladder", "tram depot", "seed bank", "wind farm", "ferry terminal"]


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def write_upload(folder: Path, i: int, tag: str) -> Path:
    """A distinct Markdown document of a few paragraphs (about 300 words)."""
    topic = TOPICS[i % len(TOPICS)]
    paragraphs = [
        f"# {topic.title()} report {tag}-{i}",
        f"This report on the {topic} was generated for a concurrency benchmark (run {tag}, file {i}).",
        *(f"Section {s}. The {topic} team checked item {s * 7 + i} on day {s + 1} and recorded a reading "
          f"of {(s + 3) * (i + 2)} units. Nothing unusual was noted, and the next check is due in "
          f"{s + 2} weeks. The inspector signed the sheet and filed it with the harbour office." for s in range(8)),
    ]
    path = folder / f"{topic.replace(' ', '-')}-{tag}-{i}.md"
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args, workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_DATA_DIR=str(workdir / "data"),
        RAG_PRELOAD=str(ROOT / "data" / "samples"),
        RAG_LOCAL_MODEL=args.model,
        RAG_MAX_ANSWER_TOKENS=str(args.max_answer_tokens),
        RAG_PUBLIC="true" if args.public else "false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
    )
    log = workdir / "serve.log"
    argv = [sys.executable, "-m", "rag.app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + args.start_timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"rag serve exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return proc, url, log
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"rag serve did not answer within {args.start_timeout:g} s (log: {log})")
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_burst(url: str, args, folder: Path) -> dict:
    from gradio_client import Client, handle_file

    def client():
        return Client(url, verbose=False, download_files=False)

    def call(c, *a, api_name: str, **kw):
        return c.submit(*a, api_name=api_name, **kw).result(timeout=args.timeout)

    tag = f"{int(time.time()) % 100000}"
    uploads = [write_upload(folder, i, tag) for i in range(args.uploads)]
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.chats)]
    barrier = threading.Barrier(args.chats + args.uploads, timeout=args.timeout)
    started: list[float] = []
    finished: list[float] = []

    def timed(fn, *a, **kw):
        barrier.wait()
        t0 = time.perf_counter()
        started.append(t0)
        out = fn(*a, **kw)
        finished.append(time.perf_counter())
        return out, finished[-1] - t0

    def chat(question: str):
        c = client()
        return timed(call, c, question, api_name="/ask")

    def upload(path: Path):
        c = client()
        (report, *_), seconds = timed(call, c, files=[handle_file(str(path))], api_name="/upload")
        return (c, report), seconds

    results = {"chat": [], "upload": [], "errors": [], "refused": 0, "uploaded": {}}
    with ThreadPoolExecutor(max_workers=args.chats + args.uploads) as pool:
        chats = [pool.submit(chat, q) for q in questions]
        ups = {pool.submit(upload, p): p.name for p in uploads}
        done, pending = wait([*chats, *ups], timeout=args.timeout + 60)
        for f in pending:
            results["errors"].append("still running at the time limit")
        for f in chats:
            if f in pending:
                continue
            if f.exception():
                results["errors"].append(f"ask: {f.exception()!r}")
                continue
            answer, seconds = f.result()
            results["chat"].append(seconds)
            if not isinstance(answer, dict) or answer.get("error") or not {"answer", "citations", "refused"} <= set(answer):
                results["errors"].append(f"ask: bad answer {answer!r:.200}")
            elif answer["refused"]:
                results["refused"] += 1
        for f, name in ups.items():
            if f in pending:
                continue
            if f.exception():
                results["errors"].append(f"upload {name}: {f.exception()!r}")
                continue
            (c, report), seconds = f.result()
            results["upload"].append(seconds)
            if "failed" in report or "added" not in report:
                results["errors"].append(f"upload {name}: {report!r:.200}")
            results["uploaded"][name] = c
    results["wall"] = (max(finished) - min(started)) if finished else float("nan")

    # no lost document: each uploader's session lists its file (private mode: the shared collection)
    lost = []
    for name, c in results["uploaded"].items():
        listed = {Path(d["source"]).name for d in call(c, api_name="/documents")}
        if name not in listed:
            lost.append(name)
    results["lost"] = lost
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an app already running (default: start `rag serve` with data/samples)")
    parser.add_argument("--chats", type=int, default=20, help="concurrent chat sessions, one question each")
    parser.add_argument("--uploads", type=int, default=5, help="concurrent upload sessions, one file each")
    parser.add_argument("--model", default="gemma3-270m", help="RAG_LOCAL_MODEL of the started server")
    parser.add_argument("--max-answer-tokens", type=int, default=256, help="RAG_MAX_ANSWER_TOKENS of the started server")
    parser.add_argument("--public", action="store_true", help="start the server in public mode")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per call")
    parser.add_argument("--start-timeout", type=float, default=300)
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    print("# command: " + shlex.join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory(prefix="rag-concurrency-") as tmp:
        workdir = Path(tmp)
        proc = None
        try:
            if args.url:
                url = args.url
                print(f"# server: {url} (its own settings)")
            else:
                t0 = time.perf_counter()
                proc, url, _ = start_server(args, workdir)
                print(f"# server: rag serve at {url}, started in {time.perf_counter() - t0:.1f} s; "
                      f"RAG_LOCAL_MODEL={args.model} RAG_MAX_ANSWER_TOKENS={args.max_answer_tokens} "
                      f"RAG_PUBLIC={str(args.public).lower()} RAG_PRELOAD=data/samples, other settings default")
            from gradio_client import Client

            t0 = time.perf_counter()
            Client(url, verbose=False, download_files=False).submit(QUESTIONS[0], api_name="/ask").result(timeout=args.timeout)
            print(f"# warm-up question (loads the model): {time.perf_counter() - t0:.1f} s")
            print(f"# burst: {args.chats} chat sessions + {args.uploads} upload sessions at once, {os.cpu_count()} CPUs")
            r = run_burst(url, args, workdir)
        finally:
            if proc is not None:
                stop_server(proc)

    print(f"{'':8} {'n':>4} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    for kind in ("chat", "upload"):
        values = r[kind]
        print(f"{kind:8} {len(values):>4} {percentile(values, 0.5):>8.2f} {percentile(values, 0.95):>8.2f} "
              f"{max(values, default=float('nan')):>8.2f}")
    wall = r["wall"]
    print(f"burst wall time {wall:.1f} s: {len(r['chat']) / wall * 60:.1f} chat turns/min, "
          f"{len(r['upload']) / wall * 60:.1f} uploads/min; {r['refused']} of {len(r['chat'])} questions refused")
    print(f"errors {len(r['errors'])}; uploaded documents listed afterwards {len(r['uploaded']) - len(r['lost'])}"
          f"/{args.uploads} (lost: {', '.join(r['lost']) or 'none'})")
    for error in r["errors"][:10]:
        print(f"  error: {error}")
    if r["errors"] or r["lost"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
