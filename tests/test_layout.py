"""The import contract: the core (`rag/` minus `rag/app/`) never imports `ingest/`, the faces or a
web framework (gradio, fastapi, starlette, uvicorn); `ingest/` never imports the faces; no import
cycle among the modules of `ingest/`. Checked on the source with `ast`, function-level imports and
`importlib.import_module("…")` / `__import__("…")` with a literal name included, so a lazy import
cannot slip past."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (package whose files are checked, files excluded, forbidden import prefixes)
WEB = ("gradio", "fastapi", "starlette", "uvicorn")
RULES = [
    ("rag", "rag/app", ("ingest", "rag.app") + WEB),
    ("ingest", None, ("rag.app",) + WEB),
]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT, typing_only: bool = True) -> list[tuple[int, list[str]]]:
    """(line, absolute module names) of every import statement in the file, at any depth; for
    `from X import Y` both X and X.Y (Y may be a submodule). typing_only=False leaves out the
    imports under `if TYPE_CHECKING:`, which never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skipped = set() if typing_only else {
        id(inner) for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in node.body for inner in ast.walk(statement)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, [alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, [module] + [f"{module}.{alias.name}" for alias in node.names]))
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            found.append((node.lineno, [node.args[0].value]))
    return found


def _dynamic_import(node: ast.Call) -> bool:
    """`importlib.import_module("x")`, `import_module("x")` or `__import__("x")` with a literal name."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return (name in ("import_module", "__import__") and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def _forbidden(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for package, excluded, prefixes in RULES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if excluded and (rel == excluded or rel.startswith(excluded + "/")):
                continue
            for line, modules in imported_modules(path, root):
                bad = next((m for m in modules if _forbidden(m, prefixes)), None)
                if bad:
                    out.append(f"{rel}:{line} imports {bad}")
    return out


def test_core_and_ingest_do_not_import_the_faces():
    found = violations()
    assert not found, "layout rule broken (core must not import ingest/ or rag.app; ingest must not import rag.app):\n" + "\n".join(found)


def test_the_check_sees_function_level_and_relative_imports(tmp_path):
    """The checker itself: a violating import inside a function, and a relative one, are reported."""
    (tmp_path / "rag" / "app").mkdir(parents=True)
    (tmp_path / "ingest").mkdir()
    (tmp_path / "rag" / "chain.py").write_text("def f():\n    from ingest.pipeline import Ingestor\n")
    (tmp_path / "rag" / "store.py").write_text("from .app import cli\n")
    (tmp_path / "rag" / "app" / "cli.py").write_text("import ingest.pipeline\n")  # allowed: a face
    (tmp_path / "ingest" / "pipeline.py").write_text("import rag.settings\nfrom rag import app\n")
    (tmp_path / "rag" / "lazy.py").write_text(
        "import importlib\n\ndef f():\n    return importlib.import_module('ingest.pipeline')\n")
    (tmp_path / "rag" / "sneaky.py").write_text("def f():\n    return __import__('rag.app.web')\n")
    (tmp_path / "rag" / "web.py").write_text("import gradio as gr\n")
    (tmp_path / "rag" / "api.py").write_text("def f():\n    from fastapi import FastAPI\n")
    found = violations(tmp_path)
    assert found == [
        "rag/api.py:2 imports fastapi",
        "rag/chain.py:2 imports ingest.pipeline",
        "rag/lazy.py:4 imports ingest.pipeline",
        "rag/sneaky.py:2 imports rag.app.web",
        "rag/store.py:1 imports rag.app",
        "rag/web.py:1 imports gradio",
        "ingest/pipeline.py:2 imports rag.app",
    ], found


STORE_INSIDES = ("collection", "client", "_collection", "_client")


def _receiver(node: ast.expr) -> str:
    """The name an attribute is read from: `store` for `store.x`, `self.store` for `self.store.x`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_receiver(node.value)}.{node.attr}"
    return ""


def chroma_violations(root: Path = ROOT) -> list[str]:
    """Modules outside rag/store/ that import chromadb (or LangChain's Chroma wrapper) or reach
    into a store's client or collection (`store.collection`, `self.store._client`, …)."""
    found = []
    for package in ("rag", "ingest"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith("rag/store/"):
                continue
            for line, modules in imported_modules(path, root):
                if any(_forbidden(m, ("chromadb", "langchain_chroma")) for m in modules):
                    found.append(f"{rel}:{line} imports {modules[0]}")
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in STORE_INSIDES:
                    receiver = _receiver(node.value)
                    if receiver.rpartition(".")[2].endswith("store"):
                        found.append(f"{rel}:{node.lineno} uses {receiver}.{node.attr}")
    return found


def test_only_the_store_talks_to_chroma():
    """One storage seam: rag/store/ is the only package that touches chromadb."""
    found = chroma_violations()
    assert not found, "\n".join(found)


def test_the_chroma_check_sees_planted_violations(tmp_path):
    (tmp_path / "rag" / "app").mkdir(parents=True)
    (tmp_path / "ingest").mkdir()
    (tmp_path / "rag" / "store").mkdir()
    (tmp_path / "rag" / "store" / "collections.py").write_text("import chromadb\n")  # allowed: the owner
    (tmp_path / "rag" / "retrieval.py").write_text(
        "class R:\n    def f(self):\n        return self.store.collection.count()\n")
    (tmp_path / "rag" / "app" / "web.py").write_text("def f(store):\n    return store._client\n")
    (tmp_path / "ingest" / "pipeline.py").write_text("def f():\n    import chromadb\n")
    assert chroma_violations(tmp_path) == [
        "rag/app/web.py:2 uses store._client",
        "rag/retrieval.py:3 uses self.store.collection",
        "ingest/pipeline.py:2 imports chromadb",
    ]


# ------------------------------------------------------------------ import cycles

def module_graph(root: Path = ROOT, packages: tuple[str, ...] = ("rag", "ingest")) -> dict[str, dict[str, int]]:
    """module -> {module of the tree it imports: line of the first such import}, function-level
    imports included, `if TYPE_CHECKING:` ones not (they never run). `import X.Y` is an edge to
    X.Y; `from X import Y` to X.Y when that is a module of the tree, else to X. (Python also runs
    X's __init__ first, but a package that lists its own submodules would then always be "in a
    cycle" with them: like import-linter's grimp, that implicit edge to a parent is not drawn.)"""
    paths = {_module_name(p, root): p for package in packages for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        edges = graph.setdefault(module, {})
        for line, names in imported_modules(path, root, typing_only=False):
            # `import a, b` gives one entry per module; `from X import Y, Z` gives [X, X.Y, X.Z]
            targets = names if len(names) == 1 else [name if name in paths else names[0] for name in names[1:]]
            for target in targets:
                if target in paths and target != module:
                    edges.setdefault(target, line)
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every
    module of one can reach every other by imports, i.e. they import each other in a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, {}):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def ingest_cycles(root: Path = ROOT) -> list[str]:
    """Each import cycle that involves a module of ingest/, with its imports ("a:3 -> b")."""
    graph = module_graph(root)
    out = []
    for cycle in import_cycles(graph):
        if any(m == "ingest" or m.startswith("ingest.") for m in cycle):
            out.append("; ".join(f"{a}:{line} -> {b}" for a in cycle for b, line in graph[a].items() if b in cycle))
    return out


def test_no_import_cycle_in_ingest():
    found = ingest_cycles()
    assert not found, "import cycle in ingest/ (move the shared code down, e.g. into ingest/formats/base.py):\n" + "\n".join(found)


def test_the_cycle_check_sees_function_level_and_relative_imports(tmp_path):
    """The checker itself: yesterday's shape (the loaders import the EPUB module inside a function,
    which imports the loaders' private helpers back) is a cycle, and so is one through a relative
    import; today's shape (a kit every format and the OCR engine import, the PDF loader calling
    the engine inside a function, the package listing its formats) is not."""
    (tmp_path / "ingest" / "formats").mkdir(parents=True)
    (tmp_path / "rag").mkdir()
    for package in ("ingest", "ingest/formats", "rag"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "ingest" / "loaders.py").write_text("import os\n\n\ndef load_epub(path):\n    from ingest.epub import read\n")
    (tmp_path / "ingest" / "epub.py").write_text("from ingest.loaders import _Budget, _Sections\n")
    (tmp_path / "ingest" / "stats.py").write_text("from .chunking import Chunker\n")
    (tmp_path / "ingest" / "chunking.py").write_text("from . import stats\n")
    (tmp_path / "ingest" / "formats" / "__init__.py").write_text("from ingest.formats import base, pdf\nfrom .epub import load\n")
    (tmp_path / "ingest" / "formats" / "base.py").write_text("import zipfile\n")
    (tmp_path / "ingest" / "formats" / "epub.py").write_text("from ingest.formats import base\nfrom .base import LoadError\n")
    (tmp_path / "ingest" / "formats" / "pdf.py").write_text("from ingest.formats.base import LoadError\n\n\ndef load(path):\n    from ingest import ocr\n")
    (tmp_path / "ingest" / "ocr.py").write_text("from ingest import stats\nfrom ingest.formats.base import LoadError, detail\n")
    (tmp_path / "ingest" / "pipeline.py").write_text("def ingest():\n    from ingest.batching import run\n")
    (tmp_path / "ingest" / "batching.py").write_text(  # a type-only import back is no cycle
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from ingest.pipeline import Ingestor\n")
    (tmp_path / "rag" / "chain.py").write_text("from rag import store\n")
    (tmp_path / "rag" / "store.py").write_text("def f():\n    import rag.chain\n")  # a cycle, but not in ingest/
    assert import_cycles(module_graph(tmp_path)) == [
        ["ingest.chunking", "ingest.stats"],
        ["ingest.epub", "ingest.loaders"],
        ["rag.chain", "rag.store"],
    ]
    assert ingest_cycles(tmp_path) == [
        "ingest.chunking:1 -> ingest.stats; ingest.stats:1 -> ingest.chunking",
        "ingest.epub:1 -> ingest.loaders; ingest.loaders:5 -> ingest.epub",
    ]
