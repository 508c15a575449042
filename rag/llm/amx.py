"""Keep llama.cpp off its AMX kernels, which crash the process on CPUs that have AMX.

llama-cpp-python builds llama.cpp from source with `-march=native`. On a CPU with AMX (Intel
Xeon 4th generation and later, common in cloud VMs) that build includes llama.cpp's AMX matrix
kernels, and the first prompt kills the whole process with "Illegal instruction": the kernels run
tile instructions on worker threads that never asked Linux for AMX state, with a tile
configuration the compiler may drop (llama.cpp pull request #26954, open as of this writing).
Seen on the development machine: `rag ask` died with SIGILL inside `libggml-cpu.so`
(`tilezero`).

Those kernels are reached only through llama.cpp's "extra buffer types" (weights repacked for a
special kernel when a model is loaded). Loading with `use_extra_bufts = False` keeps the weights
in plain CPU buffers, so the ordinary AVX-512/AVX2 kernels run. llama-cpp-python has no argument
for it, so the default model parameters it starts from are wrapped, once per process, and only
where the installed llama.cpp has AMX kernels (its system info says "AMX_INT8 = 1"). A build
without them (`CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"`, same for CXXFLAGS, when
pip builds llama-cpp-python) keeps the extra buffer types and needs no guard. docs/install.md
says what was measured (the same answer and time either way on the probe prompt). Only the
optional llama-cpp runtime needs this: the xllamacpp wheel is built without AMX kernels.
"""

from __future__ import annotations

import re

_applied = False


def build_has_amx(system_info: str | None = None) -> bool:
    """True when the installed llama.cpp has its AMX kernels ("AMX_INT8 = 1" in its system info:
    built with -march=native on a CPU with AMX)."""
    if system_info is None:
        import llama_cpp

        system_info = llama_cpp.llama_print_system_info().decode("utf-8", "ignore")
    return re.search(r"\bAMX_INT8 = 1\b", system_info) is not None


def avoid_amx_kernels(system_info: str | None = None) -> bool:
    """Make every llama_cpp.Llama loaded from now on skip extra buffer types, where llama.cpp has
    AMX kernels. True when the guard is (now or already) in place."""
    global _applied
    if _applied:
        return True
    if not build_has_amx(system_info):
        return False
    import llama_cpp.llama_cpp as bindings

    original = bindings.llama_model_default_params

    def default_params_without_extra_buffers():
        params = original()
        params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = default_params_without_extra_buffers
    _applied = True
    return True
