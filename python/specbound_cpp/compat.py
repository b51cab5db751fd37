"""Make code that builds `llama_cpp.Llama` itself build `specbound_cpp.Llama`.

Frameworks (LangChain's `LlamaCpp`, Haystack's `LlamaCppChatGenerator`,
LlamaIndex's `LlamaCPP`, llama-cpp-agent, ...) construct `llama_cpp.Llama`
inside their own code. One call switches them over without editing them:

    import specbound_cpp
    specbound_cpp.patch_llama_cpp()        # from now on, llama_cpp.Llama is ours
    ...
    specbound_cpp.unpatch_llama_cpp()      # back to llama-cpp-python's

or, for a block of code only:

    with specbound_cpp.patched_llama_cpp():
        generator.warm_up()                # builds specbound_cpp.Llama

What is switched: the `Llama` attribute of `llama_cpp` and `llama_cpp.llama`
(so `from llama_cpp import Llama` and `llama_cpp.Llama(...)` run later get
ours), and every global name of an already imported module that is bound to
llama-cpp-python's class (a framework that did `from llama_cpp import Llama`
at import time). Undoing puts back exactly the bindings that were switched
and still point at our class. Objects built while patched stay ours.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Iterator, List, Tuple

__all__ = ["patch_llama_cpp", "unpatch_llama_cpp", "patched_llama_cpp", "is_patched"]

_lock = threading.Lock()
_switched: List[Tuple[object, str]] = []  # (module, global name) now bound to our Llama
_original = None  # llama-cpp-python's class


def _ours():
    from .llama import Llama

    return Llama


def is_patched() -> bool:
    import llama_cpp

    return llama_cpp.Llama is _ours()


def patch_llama_cpp() -> None:
    """Bind `llama_cpp.Llama` (and every imported alias of it) to
    `specbound_cpp.Llama`. Calling it again while patched changes nothing."""
    global _original
    import llama_cpp
    import llama_cpp.llama

    ours = _ours()
    with _lock:
        if _original is None:
            _original = llama_cpp.llama.Llama
        original = _original
        # list() first: importing or patching must not change the dict while we walk it
        for module in list(sys.modules.values()):
            if module is None or getattr(module, "__name__", "").startswith("specbound_cpp"):
                continue
            names = getattr(module, "__dict__", {})
            for name, value in list(names.items()):
                if value is original:
                    setattr(module, name, ours)
                    _switched.append((module, name))


def unpatch_llama_cpp() -> None:
    """Undo `patch_llama_cpp`: llama-cpp-python's class is back wherever it was
    switched (a binding the program has since changed again is left alone)."""
    ours = _ours()
    with _lock:
        while _switched:
            module, name = _switched.pop()
            if getattr(module, name, None) is ours:
                setattr(module, name, _original)


@contextlib.contextmanager
def patched_llama_cpp() -> Iterator[None]:
    """`patch_llama_cpp()` for the duration of a `with` block, undone after it
    (unless it was already patched on entry, which then stays)."""
    already = is_patched()
    if not already:
        patch_llama_cpp()
    try:
        yield
    finally:
        if not already:
            unpatch_llama_cpp()
