"""Settings come from RAG_* variables and .env; bad values name the variable to fix."""

import pytest

from rag.errors import ConfigError
from rag.settings import load_settings


def test_defaults():
    s = load_settings()
    assert str(s.data_dir) == "data" and s.collection == "default" and s.chroma_url == ""
    assert s.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"


def test_environment_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("RAG_COLLECTION=from-dotenv\nRAG_CHUNK_SIZE=128\n")
    assert load_settings().collection == "from-dotenv"
    monkeypatch.setenv("RAG_COLLECTION", "from-env")
    s = load_settings()
    assert s.collection == "from-env" and s.chunk_size == 128
    assert load_settings(collection="from-flag").collection == "from-flag"


@pytest.mark.parametrize(
    "var,value",
    [("RAG_CHUNK_SIZE", "abc"), ("RAG_COLLECTION", "a b"), ("RAG_MAX_FILE_MB", "-1"), ("RAG_CHUNK_OVERLAP", "999")],
)
def test_bad_values_name_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings()
