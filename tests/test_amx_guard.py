"""rag.llm.amx: where llama.cpp was built with its AMX kernels, models load without its extra buffer
types (whose AMX kernels crash the process with SIGILL); elsewhere nothing changes. Fast: the
system info is given, and the wrapped default parameters are read without loading a model."""

import pytest

import rag.llm.amx as amx

INFO = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | {extra}LLAMAFILE = 1 | REPACK = 1 | "


def test_build_info_is_read():
    assert amx.build_has_amx(INFO.format(extra="AMX_INT8 = 1 | "))
    assert not amx.build_has_amx(INFO.format(extra=""))
    assert not amx.build_has_amx(INFO.format(extra="AMX_INT8 = 0 | "))


def test_guard_turns_extra_buffers_off_only_with_amx_kernels(monkeypatch):
    bindings = pytest.importorskip("llama_cpp.llama_cpp")
    monkeypatch.setattr(amx, "_applied", False)
    monkeypatch.setattr(bindings, "llama_model_default_params", bindings.llama_model_default_params)
    assert not amx.avoid_amx_kernels(INFO.format(extra=""))
    assert bindings.llama_model_default_params().use_extra_bufts  # llama.cpp's default, untouched

    assert amx.avoid_amx_kernels(INFO.format(extra="AMX_INT8 = 1 | "))
    assert not bindings.llama_model_default_params().use_extra_bufts
    wrapped = bindings.llama_model_default_params
    assert amx.avoid_amx_kernels(INFO.format(extra="AMX_INT8 = 1 | "))  # once per process
    assert bindings.llama_model_default_params is wrapped
