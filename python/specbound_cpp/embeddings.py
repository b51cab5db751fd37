"""llama-cpp-python's embedding API for a `Llama(..., embedding=True)`: `embed`
and `create_embedding`, with its arguments, return shapes and dicts.

An embedding is what llama.cpp's embedding mode gives: each token's hidden
state after the final norm (the LM head's input), computed by our engine over
the whole model, then pooled per input by the pooling type (the `pooling_type`
argument, else the GGUF's `<arch>.pooling_type`, else none: one vector per
token). Each input is read as its own sequence from position 0, truncated to
n_batch tokens as llama-cpp-python does. The values agree with llama.cpp's to
float tolerance, not bitwise: llama.cpp computes the prompt with its batched
kernels, in another summation order.
"""

from __future__ import annotations

from typing import Any, List, Optional, Union

import llama_cpp

POOLING_NAMES = {llama_cpp.LLAMA_POOLING_TYPE_NONE: "none", llama_cpp.LLAMA_POOLING_TYPE_MEAN: "mean",
                 llama_cpp.LLAMA_POOLING_TYPE_CLS: "cls", llama_cpp.LLAMA_POOLING_TYPE_LAST: "last"}  # fmt: skip


def resolve_pooling(pooling_type: Optional[int], metadata: dict) -> int:
    """The pooling llama.cpp's context would use: the argument, else the GGUF's, else none."""
    if pooling_type is None or pooling_type == llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED:
        arch = metadata.get("general.architecture", "")
        pooling_type = int(metadata.get(f"{arch}.pooling_type", llama_cpp.LLAMA_POOLING_TYPE_NONE))
    if isinstance(pooling_type, bool) or not isinstance(pooling_type, int):
        raise ValueError(f"pooling_type must be an integer, got {pooling_type!r}")
    if pooling_type == llama_cpp.LLAMA_POOLING_TYPE_RANK:
        from .llama_checks import UnsupportedOption  # (while patched: llama-cpp-python's class instead)

        raise UnsupportedOption("pooling_type", " with rank pooling (reranker models)")
    if pooling_type not in POOLING_NAMES:
        raise ValueError(f"pooling_type {pooling_type} is not one of llama.cpp's")
    return pooling_type


def _normalized(v: List[float]) -> List[float]:
    from llama_cpp._internals import normalize_embedding  # llama-cpp-python's own, for the same values

    return normalize_embedding(v)


def embed(llm, input: Union[str, List[str]], normalize: bool = False, truncate: bool = True,
          return_count: bool = False) -> Any:
    """llama_cpp.Llama.embed: one embedding per input (pooled), or one per token
    of each input (pooling none); a list for a list, one for a string."""
    if not llm.embedding:
        raise RuntimeError("Llama model must be created with embedding=True to call this method")
    inputs = [input] if isinstance(input, str) else list(input)
    data, total = [], 0
    for text in inputs:
        tokens = llm.tokenize(text.encode("utf-8"))
        if truncate:
            tokens = tokens[: llm.n_batch]
        if len(tokens) > llm.n_batch:
            raise ValueError(f"Requested tokens ({len(tokens)}) exceed batch size of {llm.n_batch}")
        total += len(tokens)
        rows = llm._embeddings(tokens, llm._pooling).tolist()
        if llm._pooling == llama_cpp.LLAMA_POOLING_TYPE_NONE:
            data.append([_normalized(r) for r in rows] if normalize else rows)
        else:
            data.append(_normalized(rows[0]) if normalize else rows[0])
    output = data[0] if isinstance(input, str) else data
    return (output, total) if return_count else output


def create_embedding(llm, input: Union[str, List[str]], model: Optional[str] = None) -> dict:
    """llama_cpp.Llama.create_embedding: the OpenAI-shaped response."""
    inputs = input if isinstance(input, list) else [input]
    embeds, total = embed(llm, inputs, return_count=True)
    return {
        "object": "list",
        "data": [{"object": "embedding", "embedding": e, "index": i} for i, e in enumerate(embeds)],
        "model": model if model is not None else llm.model_path,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    }
