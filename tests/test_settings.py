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


@pytest.mark.parametrize("recipe", ["2", "3"])
def test_int8_recipe_from_the_environment(monkeypatch, recipe):
    """A number from the environment is a string: the recipe setting must take it (it once was a
    Literal[2, 3], which refused "3" from RAG_EMBEDDING_INT8_RECIPE)."""
    monkeypatch.setenv("RAG_EMBEDDING_INT8_RECIPE", recipe)
    assert load_settings().embedding_int8_recipe == int(recipe)


@pytest.mark.parametrize(
    "var,value",
    [("RAG_CHUNK_SIZE", "abc"), ("RAG_COLLECTION", "a b"), ("RAG_MAX_FILE_MB", "-1"), ("RAG_CHUNK_OVERLAP", "999"),
     ("RAG_EMBEDDING_INT8_RECIPE", "4")],
)
def test_bad_values_name_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings()
