"""The documentation says what the code does: the configuration page is generated from Settings
and current, every setting is described and grouped, and no document names a RAG_ variable
that does not exist (datasette's tests/test_docs.py is the model)."""

from __future__ import annotations

import re
from pathlib import Path

from rag.app.config_doc import render
from rag.settings import GROUPS, Settings, env_names

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_page_is_generated_from_settings():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == render(), "docs/configuration.md is stale: python -m rag.app.config_doc > docs/configuration.md"


def test_every_setting_is_described_and_in_one_group():
    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(Settings.model_fields), "each setting in exactly one group of rag.settings.GROUPS"
    assert len(grouped) == len(set(grouped))
    undescribed = [n for n in Settings.model_fields if not (Settings.model_fields[n].description or "").strip()]
    assert not undescribed, f"settings without a description: {undescribed}"


def test_documents_name_only_settings_that_exist():
    known = {v for name in Settings.model_fields for v in env_names(name)}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]:
        if not path.exists():
            continue
        named = set(re.findall(r"\bRAG_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
        unknown = sorted(named - known - {"RAG_"})
        assert not unknown, f"{path.relative_to(ROOT)} names settings that do not exist: {unknown}"


def test_the_check_catches_a_stale_name(tmp_path):
    """Positive control: the pattern sees a variable in running text and in a table."""
    text = "Set `RAG_NO_SUCH_THING=1` or | `RAG_K` | 4 |"
    assert set(re.findall(r"\bRAG_[A-Z0-9_]*[A-Z0-9]\b", text)) == {"RAG_NO_SUCH_THING", "RAG_K"}
