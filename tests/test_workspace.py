"""rag.app.workspace as the web app uses it, with no server: file names from browsers, uploads into
collections, per-visitor isolation in public mode, and the sweep of idle visitor collections.

Real packaged embedder, real Chroma in tmp_path, real generated documents; no LLM runs (chain()
loads the local model, but only its retriever is used here).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from docgen import make_pdf, make_text
from rag.app.workspace import VISITOR_PREFIX, Workspace, safe_filename, visitor_collection
from rag.errors import ConfigError
from rag.store import make_client

SECRET = "The vault code for Project Heron is 7431. Only the night archivist knows it."
SECRET_QUESTION = "What is the vault code for Project Heron?"
SHARED = (
    "Lighthouse handbook. The lens of the Skarvøy lighthouse is cleaned every Tuesday morning "
    "with a soft chamois cloth and distilled water."
)
SHARED_QUESTION = "How often is the lighthouse lens cleaned?"


# ------------------------------------------------------------------ helpers

def snapshot(root: Path) -> dict[str, int]:
    """Every file under root with its size (folders as -1)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = -1
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


def workspace(settings, embedder) -> Workspace:
    ws = Workspace(settings)
    ws._embedder = embedder  # the session's embedder, loaded once
    return ws


def chroma_names(settings) -> set[str]:
    return {getattr(c, "name", c) for c in make_client(settings).list_collections()}


def sources(hits) -> set[str]:
    return {h.source for h in hits}


# ------------------------------------------------------------------ safe_filename

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("../../etc/passwd", "passwd"),
        ("../../../../../tmp/evil.pdf", "evil.pdf"),
        ("/etc/passwd", "passwd"),
        ("/abs/dir/report.pdf", "report.pdf"),
        ("C:\\Users\\bob\\Documents\\evil.pdf", "evil.pdf"),
        ("..\\..\\windows\\system32\\x.docx", "x.docx"),
        ("a\x00b\x1fc\n\r\t.pdf", "abc.pdf"),
        ("\u202eevil.pdf", "evil.pdf"),  # a right-to-left override is a control character too
        ("..", "upload"),
        (".", "upload"),
        ("foo/..", "upload"),
        ("", "upload"),
        ("   ", "upload"),
        ("report.pdf", "report.pdf"),
        ("Årsrapport 2024 – final.docx", "Årsrapport 2024 – final.docx"),
    ],
)
def test_safe_filename(raw, expected):
    assert safe_filename(raw) == expected


@pytest.mark.parametrize("stem", ["x" * 500, "日本語" * 200, "😀" * 300, "é" * 400], ids=["ascii", "cjk", "emoji", "accented"])
def test_safe_filename_bounds_long_unicode_names_and_keeps_the_extension(stem):
    name = safe_filename(stem + ".pdf")
    assert name.endswith(".pdf")
    assert len(name) <= 120
    # a file system stores names in bytes (255 on ext4, APFS, NTFS): the bound must hold there too
    assert len(name.encode("utf-8")) <= 255
    assert name[:-4] and stem.startswith(name[:-4])
    assert "/" not in name and "\\" not in name


def test_safe_filename_never_yields_a_path():
    for raw in ["../x", "a/../../b.txt", "/", "//", "\\\\server\\share\\f.md", "....//....//f.txt", "\x00"]:
        name = safe_filename(raw)
        assert name and "/" not in name and "\\" not in name and name not in (".", "..")
        assert not any(ord(ch) < 32 for ch in name)


# ------------------------------------------------------------------ private mode

def test_private_upload_stores_under_data_dir_only(tmp_path, settings, embedder):
    ws = workspace(settings, embedder)
    src = tmp_path / "src"
    notes = make_text(src / "notes.md", "# Birds\n\nPuffins nest on the eastern cliffs of Røst.\n")
    pdf = make_pdf(src / "report.pdf", ["Quarterly report.", "The warehouse in Tromsø was closed in March."])
    escape_name = f"escape-{uuid.uuid4().hex}.txt"
    absolute_target = Path("/tmp") / f"abs-{uuid.uuid4().hex}.txt"
    uploads = [
        (notes, "notes.md"),
        (pdf, "../../../../../../report.pdf"),
        (make_text(src / "a.txt", "Ferries leave at 23:40 from pier 4."), "../../../../" + escape_name),
        (make_text(src / "b.txt", "The café opens at 07:15 every day."), str(absolute_target)),
    ]
    before_tree = snapshot(tmp_path)
    before_parent = set(os.listdir(tmp_path.parent))

    results = ws.upload(uploads, "local", "notes")

    assert [r.status for r in results] == ["added"] * 4, results
    assert [r.path for r in results] == ["notes.md", "report.pdf", escape_name, absolute_target.name]
    assert all(r.chunks > 0 and r.error is None for r in results)

    # every new file is under DATA_DIR, in uploads/<collection>/ or Chroma's folder
    data_dir = settings.data_dir.relative_to(tmp_path)
    new = set(snapshot(tmp_path)) - set(before_tree)
    assert new and all(Path(p).parts[0] == str(data_dir) for p in new), sorted(new)
    folder = settings.data_dir / "uploads" / "notes"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["notes.md", "report.pdf", escape_name, absolute_target.name])
    assert (folder / "report.pdf").read_bytes() == pdf.read_bytes()
    assert set(os.listdir(tmp_path.parent)) == before_parent
    assert not absolute_target.exists()
    assert not (tmp_path.parent / escape_name).exists()
    # sources are unchanged
    assert snapshot(src) == {k[len("src/"):]: v for k, v in before_tree.items() if k.startswith("src/")}

    docs = ws.documents("local", "notes")
    assert sorted(d.source for d, _ in docs) == sorted(r.path for r in results)
    assert all(mine for _, mine in docs)
    # other collections are untouched; the chosen one is listed
    assert ws.documents("local", None) == []
    assert "notes" in ws.collections() and settings.collection in ws.collections()


def test_private_reupload_is_unchanged_and_delete_by_source(tmp_path, settings, embedder):
    ws = workspace(settings, embedder)
    pdf = make_pdf(tmp_path / "src" / "report.pdf", ["Page one.", "The auditor was Karin Lindqvist."])
    other = make_text(tmp_path / "src" / "other.txt", "Kayaks cost 840 kroner.")
    first = ws.upload([(pdf, "report.pdf"), (other, "other.txt")], "local", "books")
    assert [r.status for r in first] == ["added", "added"]

    again = ws.upload([(pdf, "report.pdf")], "local", "books")
    assert [(r.path, r.status, r.chunks) for r in again] == [("report.pdf", "unchanged", first[0].chunks)]

    # the same name with new content replaces the old version
    changed = make_pdf(tmp_path / "src2" / "report.pdf", ["Page one.", "The auditor was Nils Berg."])
    assert [r.status for r in ws.upload([(changed, "report.pdf")], "local", "books")] == ["updated"]
    assert sorted(d.source for d, _ in ws.documents("local", "books")) == ["other.txt", "report.pdf"]

    assert ws.delete("local", "books", "report.pdf") == first[0].chunks
    assert [d.source for d, _ in ws.documents("local", "books")] == ["other.txt"]
    assert ws.delete("local", "books", "report.pdf") == 0
    assert ws.delete("local", "books", "no-such-file.pdf") == 0
    assert ws.delete("local", "never-made", "other.txt") == 0  # a missing collection is not created
    assert "never-made" not in chroma_names(settings)


def test_private_long_unicode_name_is_stored(tmp_path, settings, embedder):
    ws = workspace(settings, embedder)
    src = make_text(tmp_path / "src" / "x.txt", "The night ferry to Bodø leaves at 23:40.")
    (result,) = ws.upload([(src, "😀" * 300 + ".txt")], "local", None)
    assert result.status == "added", result
    assert result.path.endswith(".txt") and len(result.path.encode()) <= 255
    assert (settings.data_dir / "uploads" / settings.collection / result.path).is_file()


def test_private_too_many_files_fails_every_file(tmp_path, settings, embedder):
    settings = settings.model_copy(update={"max_upload_files": 2})
    ws = workspace(settings, embedder)
    files = [(make_text(tmp_path / "src" / f"f{i}.txt", f"Fact number {i}."), f"../f{i}.txt") for i in range(3)]
    results = ws.upload(files, "local", "many")
    assert [r.status for r in results] == ["failed"] * 3
    assert [r.path for r in results] == ["f0.txt", "f1.txt", "f2.txt"]
    assert all("RAG_MAX_UPLOAD_FILES" in r.error and "2" in r.error for r in results)
    assert not (settings.data_dir / "uploads" / "many").exists()
    assert ws.documents("local", "many") == []

    # at the limit is fine
    assert [r.status for r in ws.upload(files[:2], "local", "many")] == ["added", "added"]


def test_private_collection_name_cannot_be_a_path(tmp_path, settings, embedder):
    ws = workspace(settings, embedder)
    src = make_text(tmp_path / "src" / "x.txt", "Some text.")
    before_parent = set(os.listdir(tmp_path.parent))
    with pytest.raises(ConfigError, match=r"collection name '\.\./\.\./outside' must be"):
        ws.upload([(src, "x.txt")], "local", "../../outside")
    assert ws.documents("local", "../../outside") == [] and ws.delete("local", "../../outside", "x.txt") == 0
    assert set(os.listdir(tmp_path.parent)) == before_parent
    assert not (tmp_path / "outside").exists()


def test_a_failed_file_does_not_stop_the_batch(tmp_path, settings, embedder):
    ws = workspace(settings, embedder)
    good = make_text(tmp_path / "src" / "good.txt", "Puffins nest on the eastern cliffs.")
    empty = make_text(tmp_path / "src" / "empty.txt", "")
    results = ws.upload([(empty, "empty.txt"), (good, "good.txt")], "local", None)
    assert [(r.path, r.status) for r in results] == [("empty.txt", "failed"), ("good.txt", "added")]
    assert results[0].error


# ------------------------------------------------------------------ public mode

@pytest.fixture
def public(tmp_path, settings, embedder, ingestor):
    """A public workspace whose shared collection (settings.collection) the owner filled."""
    shared = make_text(tmp_path / "owner" / "handbook.txt", SHARED)
    assert ingestor.ingest_file(shared).status == "added"
    ws = workspace(settings.model_copy(update={"public": True}), embedder)
    return ws, str(shared)


@pytest.mark.slow  # answers with the real local model
def test_public_sessions_are_isolated(tmp_path, public):
    ws, shared_source = public
    secret = make_text(tmp_path / "alice" / "heron.txt", SECRET)
    (result,) = ws.upload([(secret, "heron.txt")], "alice", "ignored-in-public-mode")
    assert result.status == "added"
    bob_doc = make_text(tmp_path / "bob" / "kayak.txt", "Bob's kayak is painted orange and named Skua.")
    assert [r.status for r in ws.upload([(bob_doc, "kayak.txt")], "bob", None)] == ["added"]

    # uploads land in each visitor's own collection and folder
    for who, name in (("alice", "heron.txt"), ("bob", "kayak.txt")):
        assert (ws.settings.data_dir / "uploads" / visitor_collection(who) / name).is_file()
    assert {visitor_collection("alice"), visitor_collection("bob")} <= chroma_names(ws.settings)
    assert not (ws.settings.data_dir / "uploads" / ws.settings.collection).exists()

    alice = ws.chain("alice", None).retriever
    bob = ws.chain("bob", None).retriever
    for query in (SECRET_QUESTION, "vault code 7431 Project Heron night archivist", "secret question"):
        hits = bob.retrieve(query, k=10)
        assert "heron.txt" not in sources(hits)
        assert not any("7431" in h.text for h in hits)
    assert "heron.txt" in sources(alice.retrieve(SECRET_QUESTION))
    assert "kayak.txt" not in sources(alice.retrieve("What is Bob's kayak called?", k=10))
    assert "kayak.txt" in sources(bob.retrieve("What is Bob's kayak called?"))
    # both read the shared document
    assert shared_source in sources(alice.retrieve(SHARED_QUESTION))
    assert shared_source in sources(bob.retrieve(SHARED_QUESTION))

    # a visitor with no upload yet still reads the shared collection, and nothing else
    carol = ws.chain("carol", None).retriever
    hits = carol.retrieve(SECRET_QUESTION, k=10)
    assert sources(hits) <= {shared_source}
    assert shared_source in sources(carol.retrieve(SHARED_QUESTION))


def test_public_documents_and_delete_rights(tmp_path, public):
    ws, shared_source = public
    secret = make_text(tmp_path / "alice" / "heron.txt", SECRET)
    ws.upload([(secret, "heron.txt")], "alice", None)
    bob_doc = make_text(tmp_path / "bob" / "kayak.txt", "Bob's kayak is named Skua.")
    ws.upload([(bob_doc, "kayak.txt")], "bob", None)

    alice_docs = {d.source: mine for d, mine in ws.documents("alice", None)}
    assert alice_docs == {shared_source: False, "heron.txt": True}
    bob_docs = {d.source: mine for d, mine in ws.documents("bob", None)}
    assert bob_docs == {shared_source: False, "kayak.txt": True}
    assert {d.source: mine for d, mine in ws.documents("carol", None)} == {shared_source: False}

    # nobody deletes what is not theirs, whatever collection they name
    for chosen in (None, ws.settings.collection, visitor_collection("alice")):
        assert ws.delete("bob", chosen, shared_source) == 0
        assert ws.delete("bob", chosen, "heron.txt") == 0
        assert ws.delete("carol", chosen, "heron.txt") == 0
        assert ws.delete("alice", chosen, shared_source) == 0
    assert {d.source: mine for d, mine in ws.documents("alice", None)} == alice_docs
    assert {d.source: mine for d, mine in ws.documents("bob", None)} == bob_docs

    # their own, they can
    assert ws.delete("alice", None, "heron.txt") > 0
    assert {d.source for d, _ in ws.documents("alice", None)} == {shared_source}
    assert {d.source for d, _ in ws.documents("bob", None)} == set(bob_docs)


def test_public_collections_never_list_visitors(tmp_path, public):
    ws, _ = public
    ws.upload([(make_text(tmp_path / "a" / "x.txt", SECRET), "x.txt")], "alice", None)
    ws.upload([(make_text(tmp_path / "b" / "y.txt", "Other text."), "y.txt")], "bob", None)
    assert any(n.startswith(VISITOR_PREFIX) for n in chroma_names(ws.settings))
    assert ws.collections() == [ws.settings.collection]
    assert not any(n.startswith(VISITOR_PREFIX) for n in ws.collections())


# ------------------------------------------------------------------ TTL

@pytest.mark.slow  # answers with the real local model
def test_sweep_removes_idle_visitors_and_keeps_the_shared_collection(tmp_path, public):
    ws, shared_source = public
    ttl = ws.settings.session_ttl_minutes * 60
    src = make_text(tmp_path / "alice" / "heron.txt", SECRET)
    assert [r.status for r in ws.upload([(src, "heron.txt")], "alice", None)] == ["added"]
    name = visitor_collection("alice")
    folder = ws.settings.data_dir / "uploads" / name
    assert folder.is_dir() and name in chroma_names(ws.settings)

    # an active visitor is left alone
    assert ws.sweep() == []
    assert ws.sweep(now=time.time() + ttl - 60) == []
    assert name in chroma_names(ws.settings) and folder.is_dir()

    assert ws.sweep(now=time.time() + ttl + 1) == [name]
    assert name not in chroma_names(ws.settings)
    assert not folder.exists()
    assert ws.settings.collection in chroma_names(ws.settings)
    assert {d.source: mine for d, mine in ws.documents("alice", None)} == {shared_source: False}
    assert shared_source in sources(ws.chain("alice", None).retriever.retrieve(SHARED_QUESTION))

    # the visitor can start again after the sweep
    assert [r.status for r in ws.upload([(src, "heron.txt")], "alice", None)] == ["added"]
    assert "heron.txt" in {d.source for d, _ in ws.documents("alice", None)}


def test_sweep_survives_a_restart(tmp_path, public, embedder):
    """last_seen lives in the collection's metadata: a new Workspace (a restarted app) sweeps it."""
    ws, _ = public
    src = make_text(tmp_path / "alice" / "heron.txt", SECRET)
    ws.upload([(src, "heron.txt")], "alice", None)
    name = visitor_collection("alice")
    restarted = workspace(ws.settings, embedder)
    ttl = ws.settings.session_ttl_minutes * 60
    assert restarted.sweep() == []
    assert restarted.sweep(now=time.time() + ttl + 1) == [name]
    assert name not in chroma_names(ws.settings)


def test_sweep_ignores_private_collections(tmp_path, settings, embedder):
    ws = workspace(settings, embedder)
    ws.upload([(make_text(tmp_path / "src" / "x.txt", "Puffins."), "x.txt")], "local", "mine")
    assert ws.sweep(now=time.time() + 10 * 365 * 86400) == []
    assert "mine" in chroma_names(settings)
    assert (settings.data_dir / "uploads" / "mine" / "x.txt").is_file()


# ------------------------------------------------------------------ test-mending (issue 17)

class ShiftedClock:
    """time.time() plus an offset the test moves forward: hours pass in a moment."""

    def __init__(self):
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


def test_idle_visitor_is_swept_by_another_visitors_normal_use(tmp_path, public, monkeypatch):
    """No one calls sweep(): an upload by someone else, an hour and a minute later, removes the
    idle visitor's collection and files, and keeps the active one's."""
    import sys

    ws, shared_source = public
    clock = ShiftedClock()
    monkeypatch.setattr(sys.modules[Workspace.__module__], "time", clock)
    ttl = ws.settings.session_ttl_minutes * 60
    assert [r.status for r in ws.upload([(make_text(tmp_path / "a" / "heron.txt", SECRET), "heron.txt")], "alice", None)] == ["added"]
    assert [r.status for r in ws.upload([(make_text(tmp_path / "b" / "kayak.txt", "Bob's kayak is named Skua."), "kayak.txt")], "bob", None)] == ["added"]
    alice, bob = visitor_collection("alice"), visitor_collection("bob")
    assert {alice, bob} <= chroma_names(ws.settings)

    clock.offset = ttl / 2  # half an hour on: nobody is idle long enough
    ws.upload([(make_text(tmp_path / "b" / "gulls.txt", "Gulls nest on the roof."), "gulls.txt")], "bob", None)
    assert {alice, bob} <= chroma_names(ws.settings)

    clock.offset = ttl / 2 + ttl + 61  # alice idle for over the TTL, bob for half of it
    ws.upload([(make_text(tmp_path / "b" / "crane.txt", "The harbour crane lifts 40 tonnes."), "crane.txt")], "bob", None)
    names = chroma_names(ws.settings)
    assert alice not in names and bob in names and ws.settings.collection in names
    assert not (ws.settings.data_dir / "uploads" / alice).exists()
    assert (ws.settings.data_dir / "uploads" / bob / "kayak.txt").is_file()
    assert {d.source for d, _ in ws.documents("alice", None)} == {shared_source}
    assert {d.source for d, _ in ws.documents("bob", None)} == {shared_source, "kayak.txt", "gulls.txt", "crane.txt"}
