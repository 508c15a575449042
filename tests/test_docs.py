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


# ------------------------------------------------------------------ what a reader can follow

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
PRIVATE_PATH = re.compile(r"\.\./shared\b|(?<![\w.])/tmp/")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<img\b[^>]*\bsrc=\"([^\"]+)\"")


def private_paths(text: str) -> list[str]:
    """Lines naming a path only the developers have: ../shared (the eval sets) or /tmp/."""
    return [line.strip() for line in text.splitlines() if PRIVATE_PATH.search(line)]


def test_no_document_points_at_a_path_a_user_does_not_have():
    for path in DOCUMENTS:
        found = private_paths(path.read_text(encoding="utf-8"))
        assert not found, f"{path.relative_to(ROOT)}: data paths are arguments (e.g. $XQUAD, --data-dir DIR): {found}"


def test_the_private_path_check_catches_both(tmp_path):
    """Positive control: ../shared and /tmp/ are caught in a command and in running text, and the
    word "shared" or a path merely ending in tmp is not."""
    text = ("python bench/x.py ../shared/eval/xquad-en/xquad.en.json\n"
            "stores in `--data-dir /tmp/rag-bench`\n"
            "a machine shared with other jobs\nthe folder my/tmp/ is fine, and so is data/tmpfile\n")
    assert private_paths(text) == ["python bench/x.py ../shared/eval/xquad-en/xquad.en.json",
                                   "stores in `--data-dir /tmp/rag-bench`"]


def test_readme_fits_on_a_few_screens():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move detail to docs/ or bench/README.md"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}


def broken_links(path: Path) -> list[str]:
    """Relative links (and image sources) of a Markdown file whose file, or #anchor in a Markdown
    file, does not exist. Links inside fenced code are not links."""
    broken = []
    for match in LINK.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    return broken


def test_every_relative_link_points_at_something_that_exists():
    for path in DOCUMENTS:
        broken = broken_links(path)
        assert not broken, f"{path.relative_to(ROOT)} links to what does not exist: {broken}"


def test_the_link_check_catches_a_missing_file_and_anchor(tmp_path):
    """Positive control: a missing file, a missing anchor and a missing image are caught; a present
    file, heading and image, an external URL and a link shown in a code block are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Page A\n\n## How answers are made, and why\n", encoding="utf-8")
    (tmp_path / "shot.png").write_bytes(b"")
    page = tmp_path / "README.md"
    page.write_text(
        "[a](docs/a.md) [b](docs/a.md#how-answers-are-made-and-why) ![s](shot.png) [w](https://example.org/x)\n"
        "[gone](docs/gone.md) [bad anchor](docs/a.md#no-such-heading) <img src=\"missing.png\" alt=\"\">\n"
        "[self](#top)\n\n```\n[in code](nowhere.md)\n```\n\n# Top\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["docs/gone.md", "docs/a.md#no-such-heading", "missing.png"]
