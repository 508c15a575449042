"""The import contract: the core (`rag/` minus `rag/app/`) never imports `ingest/` or the faces;
`ingest/` never imports the faces. Checked on the source with `ast`, function-level imports
included, so a lazy import inside a function cannot slip past."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (package whose files are checked, files excluded, forbidden import prefixes)
RULES = [
    ("rag", "rag/app", ("ingest", "rag.app")),
    ("ingest", None, ("rag.app",)),
]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, list[str]]]:
    """(line, absolute module names) of every import statement in the file, at any depth; for
    `from X import Y` both X and X.Y (Y may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, [alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, [module] + [f"{module}.{alias.name}" for alias in node.names]))
    return found


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
    (tmp_path / "ingest" / "loaders.py").write_text("import rag.settings\nfrom rag import app\n")
    found = violations(tmp_path)
    assert found == [
        "rag/chain.py:2 imports ingest.pipeline",
        "rag/store.py:1 imports rag.app",
        "ingest/loaders.py:2 imports rag.app",
    ], found


def test_only_the_store_talks_to_chroma():
    """One storage seam: rag/store.py is the only module that imports chromadb (or LangChain's
    Chroma wrapper) or reaches into a store's `.collection` / `.client`."""
    found = []
    for package in ("rag", "ingest"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "rag/store.py":
                continue
            for line, modules in imported_modules(path):
                if any(_forbidden(m, ("chromadb", "langchain_chroma")) for m in modules):
                    found.append(f"{rel}:{line} imports {modules[0]}")
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Attribute) and node.attr in ("collection", "client")
                        and isinstance(node.value, ast.Name) and node.value.id.endswith("store")):
                    found.append(f"{rel}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not found, "\n".join(found)
