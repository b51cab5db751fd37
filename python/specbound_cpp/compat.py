"""Make code that builds `llama_cpp.Llama` itself build `specbound_cpp.Llama`.

Frameworks (LangChain's `LlamaCpp`, Haystack's `LlamaCppChatGenerator`,
LlamaIndex's `LlamaCPP`, llama-cpp-agent, ...) construct `llama_cpp.Llama`
inside their own code. One call switches them over without editing them:

    import specbound_cpp
    specbound_cpp.patch_llama_cpp()        # from now on, llama_cpp.Llama(...) builds ours
    ...
    specbound_cpp.unpatch_llama_cpp()      # back to llama-cpp-python's

or, for a block of code only:

    with specbound_cpp.patched_llama_cpp():
        generator.warm_up()                # builds specbound_cpp.Llama

What is switched: the `Llama` attribute of `llama_cpp` and `llama_cpp.llama`
(so `from llama_cpp import Llama` and `llama_cpp.Llama(...)` run later get
the stand-in), and every global name of an already imported module that is
bound to llama-cpp-python's class (a framework that did `from llama_cpp
import Llama` at import time). Undoing puts back exactly the bindings that
were switched and still point at the stand-in. Objects built while patched
stay what they were built as.

The stand-in is a subclass of llama-cpp-python's `Llama` whose construction
builds `specbound_cpp.Llama`, or, where that refuses an option llama-cpp-python
takes (lora_path with GPU offload, a quantized KV cache with GPU offload,
draft_model, tokenizer, an unknown keyword, ...: `llama_checks.UnsupportedOption` /
`UnknownOption`), llama-cpp-python's
own class, with one `FallbackWarning` naming the option: a patched app runs
as it ran unpatched. `isinstance(obj, llama_cpp.Llama)` holds for both kinds
of object; a class that subclasses `llama_cpp.Llama` while patched gets
llama-cpp-python's implementation (its methods assume that one's internals).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import threading
import warnings
from typing import Any, Iterator, List, Optional, Tuple

__all__ = ["patch_llama_cpp", "unpatch_llama_cpp", "patched_llama_cpp", "is_patched", "FallbackWarning"]

_lock = threading.Lock()
_switched: List[Tuple[object, str]] = []  # (module, global name) now bound to the stand-in
_original: Optional[type] = None  # llama-cpp-python's class
_stand_in: Optional[type] = None  # what llama_cpp.Llama is while patched


class FallbackWarning(UserWarning):
    """While patched, a `llama_cpp.Llama(...)` built llama-cpp-python's own
    class, because specbound_cpp.Llama refuses one of its options."""


def _ours():
    from .llama import Llama

    return Llama


def _build(args: tuple, kwargs: dict) -> Any:
    """What `llama_cpp.Llama(*args, **kwargs)` builds while patched."""
    from .llama_checks import UnknownOption, UnsupportedOption

    try:
        return _ours()(*args, **kwargs)
    except (UnsupportedOption, UnknownOption) as e:
        option = e.option
    # outside the except block: the traceback, and with it our half-built
    # object (a loaded model, when the rope check refused), is freed first
    warnings.warn(
        f"specbound_cpp.Llama does not support the {option} option: llama_cpp.Llama built "
        "llama-cpp-python's own class (no SpecBound for this model)",
        FallbackWarning,
        stacklevel=3,  # the caller of llama_cpp.Llama(...)
    )
    return _original(*args, **kwargs)


class _StandInType(type):
    """Metaclass of the stand-in: its calls build ours or llama-cpp-python's,
    and either is an instance of it. Subclasses behave as ordinary classes."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is _stand_in:
            return _build(args, kwargs)
        return super().__call__(*args, **kwargs)

    def __instancecheck__(cls, obj: Any) -> bool:
        if cls is _stand_in:
            return isinstance(obj, (_ours(), _original))
        return super().__instancecheck__(obj)

    def __subclasscheck__(cls, sub: type) -> bool:
        if cls is _stand_in:
            return issubclass(sub, (_ours(), _original))
        return super().__subclasscheck__(sub)

    @property
    def __signature__(cls) -> Optional[inspect.Signature]:
        # ours: every llama-cpp-python option and the SpecBound ones, for
        # frameworks that pick keywords by signature (None: inspect's own way)
        return inspect.signature(_ours()) if cls is _stand_in else None


def _make_stand_in(original: type) -> type:
    # A subclass of llama-cpp-python's class, so that its class attributes
    # (from_pretrained, which calls cls(...), longest_token_prefix, ...) and
    # its own code, which names its class through the patched module global,
    # keep working.
    namespace = {
        "__module__": __name__,
        "__qualname__": "Llama",
        "__doc__": "llama_cpp.Llama while specbound_cpp.patch_llama_cpp() is active: "
        "builds specbound_cpp.Llama, or llama-cpp-python's Llama for options ours refuses.",
    }
    return _StandInType("Llama", (original,), namespace)


def is_patched() -> bool:
    import llama_cpp

    return _stand_in is not None and llama_cpp.Llama is _stand_in


def patch_llama_cpp() -> None:
    """Bind `llama_cpp.Llama` (and every imported alias of it) to the stand-in,
    which builds `specbound_cpp.Llama`. Calling it again while patched changes nothing."""
    global _original, _stand_in
    import llama_cpp
    import llama_cpp.llama

    with _lock:
        if _original is None:
            _original = llama_cpp.llama.Llama
            _stand_in = _make_stand_in(_original)
        original, stand_in = _original, _stand_in
        # list() first: importing or patching must not change the dict while we walk it
        for module in list(sys.modules.values()):
            if module is None or getattr(module, "__name__", "").startswith("specbound_cpp"):
                continue
            names = getattr(module, "__dict__", {})
            for name, value in list(names.items()):
                if value is original:
                    setattr(module, name, stand_in)
                    _switched.append((module, name))


def unpatch_llama_cpp() -> None:
    """Undo `patch_llama_cpp`: llama-cpp-python's class is back wherever it was
    switched (a binding the program has since changed again is left alone)."""
    with _lock:
        while _switched:
            module, name = _switched.pop()
            if getattr(module, name, None) is _stand_in:
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
