"""specbound-cpp: exact self-speculative decoding for GGUF models on llama.cpp's ggml.

``from specbound_cpp import Llama`` behaves like ``llama_cpp.Llama``, only faster.
The compiled engine is imported lazily, so ``python -m specbound_cpp.models``
works even before it is built.
"""

import ctypes
import importlib.util
import os
import sys

__version__ = "0.1.0"
__all__ = ["Llama", "RpcError", "patch_llama_cpp", "unpatch_llama_cpp", "patched_llama_cpp"]
_COMPAT = ("patch_llama_cpp", "unpatch_llama_cpp", "patched_llama_cpp", "is_patched", "FallbackWarning")


def _preload_llama_cpp_libraries() -> None:
    """Map llama-cpp-python's libraries under the file names llama_cpp opens.

    Its wheel ships libllama.so and libllama.so.0 as separate identical files:
    llama_cpp opens the first by path, our extension needs the second by soname.
    Opened here first, by the path llama_cpp uses, the loader reuses this one
    copy for our extension's dependency, and llama_cpp reopens the same file:
    one libllama and one libggml per process, whatever the import order.
    (libggml* are mapped by soname, from libllama's RUNPATH, exactly as when
    llama_cpp loads it.)
    """
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return
    lib_dir = os.path.join(os.path.dirname(spec.origin), "lib")
    ext = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
    path = os.path.join(lib_dir, f"libllama{ext}")
    if os.path.exists(path):
        ctypes.CDLL(path, mode=getattr(ctypes, "RTLD_GLOBAL", 0))


_preload_llama_cpp_libraries()


def __getattr__(name):
    if name == "Llama":
        from .llama import Llama

        return Llama
    if name == "RpcError":  # an RPC worker failed or cannot be reached (a ConnectionError)
        from ._core import RpcError

        return RpcError
    if name in _COMPAT:  # the drop-in switch for code that builds llama_cpp.Llama itself
        from . import compat

        return getattr(compat, name)
    raise AttributeError(f"module 'specbound_cpp' has no attribute {name!r}")
