"""How long the `rag` commands a user types often take, as a fresh process each time.

    python bench/cli_latency.py               # 3 runs each, ask included
    python bench/cli_latency.py --runs 5 --no-ask

A fresh data folder in /tmp gets the sample documents (data/samples) once; then each command runs
--runs times as `python -m rag.app ...`. Printed per command: median wall time and median CPU time
(user+sys of the process: what the command costs on an idle machine, whatever else is running).
Targets (issue 15): `docs list` and a missing file <= 1 s.

`rag ask` runs in a pseudo-terminal, as a user sees it: the time until "searching…" appears, and
until the first answer token replaces it.
"""

from __future__ import annotations

import argparse
import os
import pty
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def env_for(data: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DATA_DIR=str(data), RAG_TEMPERATURE="0", RAG_MAX_ANSWER_TOKENS="32",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])), HF_HUB_OFFLINE="1")
    return env


def timed(argv: list[str], env: dict) -> tuple[float, float, int, str]:
    """(wall s, cpu s, exit code, output) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rag.app", *argv], env=env, cwd=env["RAG_DATA_DIR"],
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode, (proc.stdout + proc.stderr).strip()


def ask_in_terminal(question: str, env: dict) -> tuple[float | None, float | None, float]:
    """(s to "searching…", s to the first answer character after it, s to exit) in a pty."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(env["RAG_DATA_DIR"])
        os.execve(sys.executable, [sys.executable, "-m", "rag.app", "ask", question], env)
    start = time.perf_counter()
    seen, searching, first = b"", None, None
    while True:
        ready, _, _ = select.select([fd], [], [], 600)
        if not ready:
            break
        try:
            data = os.read(fd, 1024)
        except OSError:
            break
        if not data:
            break
        seen += data
        now = time.perf_counter() - start
        if searching is None and "searching…".encode() in seen:
            searching = now
        elif searching is not None and first is None:
            rest = seen.split("searching…".encode(), 1)[1].replace(b"\b", b"").strip()
            if rest:
                first = now
    os.waitpid(pid, 0)
    return searching, first, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-ask", action="store_true", help="skip the `rag ask` run (it loads the LLM)")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="rag-cli-latency-"))
    env = env_for(data)
    wall, cpu, code, out = timed(["ingest", str(ROOT / "data" / "samples")], env)
    print(f"setup: rag ingest data/samples  {wall:.1f} s (exit {code})")
    if code != 0:
        print(out)

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    commands = {
        "rag --help": ["--help"],
        "rag docs list": ["docs", "list"],
        "rag ingest missing.pdf": ["ingest", "missing.pdf"],
        "rag docs delete nothing.md": ["docs", "delete", "nothing.md"],
        f"rag serve --port {port} (busy)": ["serve", "--port", str(port)],
        "rag search QUERY (loads the embedder)": ["search", "When is the lens cleaned?"],
    }
    print(f"\n{'command':<42} {'wall p50':>9} {'cpu p50':>8}  exit  output (last line)")
    for name, argv in commands.items():
        runs = [timed(argv, env) for _ in range(args.runs)]
        walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
        last = runs[-1][3].splitlines()[-1] if runs[-1][3] else ""
        print(f"{name:<42} {statistics.median(walls):>7.2f} s {statistics.median(cpus):>6.2f} s  {runs[-1][2]:>4}  {last[:90]}")
    busy.close()

    if not args.no_ask:
        searching, first, total = ask_in_terminal("How often is the lighthouse lens cleaned?", env)
        fmt = lambda v: "never" if v is None else f"{v:.2f} s"  # noqa: E731
        print(f"\nrag ask in a terminal: 'searching…' after {fmt(searching)}, first token after {fmt(first)}, "
              f"done after {total:.1f} s")
    print(f"\nload average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times grow with it; CPU times do not)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
