"""Constrained and shaped choices of a completion, handed to the engine.

llama-cpp-python's `grammar` (a `LlamaGrammar`, as its chat handlers build for
`response_format` JSON mode and JSON schemas), `logit_bias`,
`logits_processor`, `typical_p` and mirostat become a `_core.ConstraintParams`
(in the request's GenerateParams) and the processor lent to `Session.begin`
and each `Session.step`. The engine applies them to the full model's logits at
each position it emits, in llama-cpp-python's sampler-chain order (processors,
bias, penalties, grammar, then the choice), with libllama's own grammar
sampler; under SpecBound, verification does exactly the same, so drafts are
checked against the constrained choice and the text is plain decoding's.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np


def _grammar_text(grammar: Any) -> tuple:
    """(GBNF text, root rule) of a llama_cpp.LlamaGrammar (or a GBNF string)."""
    if isinstance(grammar, str):
        return grammar, "root"
    text, root = getattr(grammar, "_grammar", None), getattr(grammar, "_root", "root")
    if not isinstance(text, str):
        raise TypeError(f"grammar must be a llama_cpp.LlamaGrammar or a GBNF string, not {type(grammar).__name__}")
    return text, root or "root"


def _bias_pairs(logit_bias: Dict[Any, float], n_vocab: int) -> List[tuple]:
    """llama-cpp-python's {token id (int or str): bias} as (id, bias) pairs."""
    if not isinstance(logit_bias, dict):
        raise TypeError(f"logit_bias must be a dict of token id -> bias, not {type(logit_bias).__name__}")
    pairs = []
    for key, value in logit_bias.items():
        try:
            token = int(key)
            bias = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"logit_bias entry {key!r}: {value!r} is not token id -> number") from None
        if not 0 <= token < n_vocab:
            raise ValueError(f"logit_bias token id {token} is not in [0, {n_vocab})")
        if bias != bias:
            raise ValueError(f"logit_bias for token {token} is NaN")
        pairs.append((token, bias))
    return pairs


def _processor(processors: Sequence[Callable], prompt_tokens: List[int]) -> Callable:
    """The engine's callback: llama-cpp-python calls each processor with its
    input_ids (prompt and generated tokens so far) and the row of logits, and
    takes the scores it returns."""
    prompt = np.asarray(prompt_tokens, dtype=np.intc)

    def apply(generated: np.ndarray, row: np.ndarray) -> None:
        input_ids = np.concatenate([prompt, generated.astype(np.intc, copy=False)])
        for processor in processors:
            row[:] = processor(input_ids, row)

    return apply


def engine_constraints(grammar: Any, logit_bias: Optional[Dict[Any, float]], logits_processor: Any,
                       typical_p: float, mirostat_mode: int, mirostat_tau: float, mirostat_eta: float,
                       temperature: float, prompt_tokens: List[int], n_vocab: int) -> Tuple[Any, Optional[Callable]]:  # fmt: skip
    """(ConstraintParams, processor or None) for these completion arguments.
    typical_p and mirostat only shape sampling: greedy (temperature 0) ignores
    them, as llama-cpp-python does."""
    from . import _core

    c = _core.ConstraintParams()
    processor = None
    if grammar is not None:
        c.grammar, c.grammar_root = _grammar_text(grammar)
    if logit_bias:
        c.logit_bias = _bias_pairs(logit_bias, n_vocab)
    if logits_processor is not None:
        processors = [logits_processor] if callable(logits_processor) and not isinstance(logits_processor, list) \
            else list(logits_processor)  # fmt: skip
        if not all(callable(p) for p in processors):
            raise TypeError("logits_processor must be a callable or a list of callables (input_ids, scores) -> scores")
        if processors:
            processor = _processor(processors, prompt_tokens)
    for name, v in (("typical_p", typical_p), ("mirostat_tau", mirostat_tau), ("mirostat_eta", mirostat_eta)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            raise ValueError(f"{name} must be a number, got {v!r}")
    if mirostat_mode not in (0, 1, 2):
        raise ValueError(f"mirostat_mode must be 0, 1 or 2, got {mirostat_mode!r}")
    if temperature > 0:
        if typical_p < 1.0:
            if typical_p <= 0:
                raise ValueError(f"typical_p must be in (0, 1], got {typical_p}")
            c.typical_p = float(typical_p)
        if mirostat_mode:
            c.mirostat, c.mirostat_tau, c.mirostat_eta = int(mirostat_mode), float(mirostat_tau), float(mirostat_eta)
    return c, processor
