"""llama-cpp-python with weight repacking off, for the benchmark's llama_cpp_norepack system."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def no_weight_repacking():
    """Load llama.cpp models with use_extra_bufts = false.

    By default llama.cpp puts weights of some types (Q4_0, Q4_K, IQ4_NL, ...) in
    the CPU_REPACK extra buffer type, re-laid out for its interleaved gemv/gemm
    kernels, which sum in another order than the plain vec_dot kernels. Our
    engine repacks the same weights by default (model/load.cpp), so the parity
    tests compare with llama-cpp-python's defaults; this switch remains for the
    benchmark's `llama_cpp_norepack` system (llama.cpp on the weights as the
    GGUF stores them, as our engine has them with SPECBOUND_REPACK=0).
    llama_cpp.Llama has no keyword for it (llama_model_params.use_extra_bufts
    exists, but Llama.__init__ fills model_params itself from
    llama_model_default_params()), so the defaults are patched while the model
    loads.
    """
    import llama_cpp.llama_cpp as lc

    orig = lc.llama_model_default_params

    def patched():
        params = orig()
        params.use_extra_bufts = False
        return params

    lc.llama_model_default_params = patched
    try:
        yield
    finally:
        lc.llama_model_default_params = orig
