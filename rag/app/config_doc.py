"""docs/configuration.md, generated from the Settings descriptions (one source of truth):
`python -m rag.app.config_doc > docs/configuration.md`; tests/test_docs.py checks it is current."""

from __future__ import annotations

from pydantic_core import PydanticUndefined

from rag.settings import GROUPS, Settings, env_names

HEADER = """# Configuration

Every setting is an environment variable (or a line of a `.env` file in the working directory);
`rag` command-line flags override them for one run. This page is generated from `rag/settings.py`
(`python -m rag.app.config_doc > docs/configuration.md`); a test fails when it is out of date.
"""


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    if field.default_factory is not None:
        return "(see description)"
    value = field.default
    if value is PydanticUndefined or value is None or value == "":
        return "(empty)"
    return f"`{value}`"


def render() -> str:
    out = [HEADER]
    for group, names in GROUPS.items():
        out += [f"## {group}", "", "| variable | default | what it does |", "|---|---|---|"]
        for name in names:
            field = Settings.model_fields[name]
            variables = " / ".join(f"`{v}`" for v in env_names(name))
            description = (field.description or "").replace("|", "\\|")
            out.append(f"| {variables} | {_default(name)} | {description} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
