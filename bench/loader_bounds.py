"""Loader work bounds: time to load (or refuse) DOCX files of N empty paragraphs, and a real one;
HTML files of N empty <p> elements.

    python bench/loader_bounds.py [--sizes 20000,150000,700000] [--html-sizes 20000,150000,2000000] [--loaders PATH]

Each file is a real DOCX (python-docx's template) whose body is N empty <w:p/>; 700,000 of them
zip to about 41 KB, under the zip-bomb limits. `--loaders` points at another checkout's folder
holding an ingest/ package (e.g. an older commit exported with `git archive REV ingest | tar -x -C OLD`;
before ingest/formats/ existed, the loaders were ingest/loaders.py) to time that version in the
same run; give it small sizes, the old per-paragraph style lookup took minutes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import docgen  # noqa: E402


def _load_file():
    """`load_file` of the `ingest` package first on sys.path (an older one had ingest/loaders.py)."""
    try:
        return importlib.import_module("ingest.formats").load_file
    except ModuleNotFoundError:
        return importlib.import_module("ingest.loaders").load_file


def time_load(load_file, path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        docs = load_file(path)
        outcome = f"{len(docs)} sections"
    except Exception as exc:  # LoadError: the per-file reason
        outcome = f"refused: {exc}"
    return time.perf_counter() - start, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,150000,700000")
    parser.add_argument("--html-sizes", default="20000,150000,2000000")
    parser.add_argument("--loaders", type=Path, help="folder containing another ingest/ package to time too")
    args = parser.parse_args()
    versions = {"this checkout": _load_file()}
    if args.loaders:
        sys.path.insert(0, str(args.loaders))
        for name in [m for m in sys.modules if m == "ingest" or m.startswith("ingest.")]:
            del sys.modules[name]
        versions[f"{args.loaders}"] = _load_file()
    with tempfile.TemporaryDirectory() as tmp:
        print("| empty paragraphs | file KB | loader | seconds | outcome |\n|---|---|---|---|---|")
        for n in (int(s) for s in args.sizes.split(",")):
            path = docgen.make_empty_paragraph_docx(Path(tmp) / f"empty-{n}.docx", n)
            for name, load_file in versions.items():
                seconds, outcome = time_load(load_file, path)
                print(f"| {n:,} | {path.stat().st_size // 1024} | {name} | {seconds:.2f} | {outcome} |", flush=True)
        real = docgen.make_docx(Path(tmp) / "manual.docx", [("heading", 1, "Install"), ("para", "Plug it in.")] * 2000)
        for name, load_file in versions.items():
            seconds, outcome = time_load(load_file, real)
            print(f"| 4,000 with text, 2,000 headings | {real.stat().st_size // 1024} | {name} | {seconds:.2f} | {outcome} |")
        print("\n| empty <p> elements | HTML KB | loader | seconds | outcome |\n|---|---|---|---|---|")
        for n in (int(s) for s in args.html_sizes.split(",") if s):
            path = Path(tmp) / f"many-{n}.html"
            path.write_bytes(b"<html><body>" + b"<p>x</p>" * n + b"</body></html>")
            for name, load_file in versions.items():
                seconds, outcome = time_load(load_file, path)
                print(f"| {n:,} | {path.stat().st_size // 1024} | {name} | {seconds:.2f} | {outcome} |", flush=True)


if __name__ == "__main__":
    main()
