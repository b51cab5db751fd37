"""OpenAI-compatible HTTP server: llama-cpp-python's server with our `Llama`.

    python -m specbound_cpp.server --model smollm2-135m --port 8000
    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
         -d '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 32}'

Everything HTTP (routes, request validation, streaming as server-sent events,
the request locks, the settings and their command-line flags) is
llama-cpp-python's own `llama_cpp.server`. The only change is the object that
generates: its model proxy builds a `specbound_cpp.Llama` from the model
settings instead of a `llama_cpp.Llama`. `--model` also takes a registry name
(fetched on first use); `--no_specbound` serves with plain decoding.

Needs the server dependencies: `bash tools/setup.sh --server` or
`pip install specbound-cpp[server]`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from typing import Dict, List, Optional, Union

from . import models

try:
    import uvicorn
    from llama_cpp.server import app as _app
    from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
    from llama_cpp.server.model import LlamaProxy
    from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

    from . import server_errors
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(
        f"specbound_cpp.server needs llama-cpp-python's server dependencies ({e.name} is missing): "
        "bash tools/setup.sh --server, or pip install 'specbound-cpp[server]'"
    ) from e

__all__ = ["create_app", "main", "SpecBoundProxy"]

# ModelSettings fields passed to specbound_cpp.Llama under the same name. The
# others (hf_model_repo_id, draft models, clip models, caches, ...) must stay at
# their defaults: we refuse them rather than ignore them.
_PASSED = (
    "n_gpu_layers", "split_mode", "main_gpu", "tensor_split", "vocab_only", "use_mmap", "use_mlock", "seed",
    "n_ctx", "n_batch", "n_ubatch", "n_threads", "n_threads_batch", "rope_scaling_type", "rope_freq_base",
    "rope_freq_scale", "yarn_ext_factor", "yarn_attn_factor", "yarn_beta_fast", "yarn_beta_slow", "yarn_orig_ctx",
    "logits_all", "embedding", "offload_kqv", "flash_attn", "last_n_tokens_size", "lora_base", "lora_path", "numa",
    "chat_format", "type_k", "type_v", "verbose", "rpc_servers",
)  # fmt: skip
_REFUSED = ("hf_model_repo_id", "draft_model", "clip_model_path", "hf_pretrained_model_name_or_path",
            "chat_template_kwargs")  # fmt: skip


def kv_overrides_setting(entries: Optional[List[str]]) -> Optional[Dict[str, Union[bool, int, float, str]]]:
    """The server's --kv_overrides entries ("key=type:value", type bool, int,
    float or str) as Llama's kv_overrides, read as llama_cpp.server reads them
    (an entry without a type is skipped there, and here)."""
    if entries is None:
        return None
    out: Dict[str, Union[bool, int, float, str]] = {}
    for entry in entries:
        key, value = entry.split("=")
        if ":" not in value:
            continue
        kind, value = value.split(":")
        if kind == "bool":
            out[key] = value.lower() in ("true", "1")
        elif kind in ("int", "float", "str"):
            out[key] = {"int": int, "float": float, "str": str}[kind](value)
        else:
            raise ValueError(f"Unknown value type {kind}")
    return out


class SpecBoundProxy(LlamaProxy):
    """llama_cpp.server's model proxy (one model loaded at a time, switched by
    the request's `model`), loading `specbound_cpp.Llama` objects."""

    specbound: Optional[bool] = None  # None: SpecBound where the invariance check holds

    @staticmethod
    def load_llama_from_model_settings(settings: ModelSettings):
        from .llama import Llama

        for name in _REFUSED:
            if getattr(settings, name, None):
                raise NotImplementedError(f"specbound_cpp.server does not support the {name} setting")
        if settings.cache:
            raise NotImplementedError("specbound_cpp.server does not support --cache (prompt prefixes are reused anyway)")
        kwargs = {name: getattr(settings, name) for name in _PASSED if hasattr(settings, name)}
        kwargs["kv_overrides"] = kv_overrides_setting(getattr(settings, "kv_overrides", None))
        return _served(Llama)(settings.model, specbound=SpecBoundProxy.specbound, **kwargs)


def _served(llama_class):
    """`Llama` whose refusals of a request's arguments are client errors (400)."""

    def refusals_as_client_errors(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except (ValueError, TypeError, NotImplementedError) as e:
                if "exceed context window" in str(e):
                    raise  # llama-cpp-python's server answers this one (400, context_length_exceeded)
                raise server_errors.ClientError(str(e)) from e

        return call

    class ServedLlama(llama_class):
        create_completion = refusals_as_client_errors(llama_class.create_completion)
        __call__ = create_completion
        create_chat_completion = refusals_as_client_errors(llama_class.create_chat_completion)

    return ServedLlama


@contextlib.contextmanager
def _our_proxy():
    # llama_cpp.server.app.create_app builds its proxy from the module-level name
    # LlamaProxy: point it at ours while the app is created.
    saved = _app.LlamaProxy
    _app.LlamaProxy = SpecBoundProxy
    try:
        yield
    finally:
        _app.LlamaProxy = saved


def create_app(server_settings: ServerSettings, model_settings: List[ModelSettings], specbound: bool = True):
    """The FastAPI app of llama_cpp.server, generating with specbound_cpp.Llama."""
    SpecBoundProxy.specbound = None if specbound else False
    for ms in model_settings:
        if not os.path.isfile(ms.model) and ms.model in models.MODELS:
            if not ms.model_alias:
                ms.model_alias = ms.model  # clients ask for the registry name
            ms.model = str(models.model_path(ms.model, progress=True))
    with _our_proxy():
        app = _app.create_app(server_settings=server_settings, model_settings=model_settings)
    server_errors.install(app)  # malformed requests: 400, not 500
    return app


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m specbound_cpp.server",
        description="OpenAI-compatible server (llama-cpp-python's) generating with SpecBound.",
    )
    add_args_from_model(p, Settings)
    p.add_argument("--no_specbound", "--no-specbound", action="store_true", help="serve with plain decoding")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.model is None:
        args.model = models.DEFAULT_MODEL
    try:
        server_settings = parse_model_from_args(ServerSettings, args)
        model_settings = [parse_model_from_args(ModelSettings, args)]
        app = create_app(server_settings, model_settings, specbound=not args.no_specbound)
    except (OSError, ValueError, RuntimeError, NotImplementedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    uvicorn.run(
        app,
        host=os.getenv("HOST", server_settings.host),
        port=int(os.getenv("PORT", server_settings.port)),
        ssl_keyfile=server_settings.ssl_keyfile,
        ssl_certfile=server_settings.ssl_certfile,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
