"""vocab_only=True: the vocabulary alone, as llama-cpp-python loads it (libllama
with no weights): tokenize, detokenize, token pieces, special tokens, chat
template and metadata work; anything that needs the model's weights raises
VocabOnlyError instead of reaching an engine that was never built."""

from __future__ import annotations

from typing import Any


class VocabOnlyError(RuntimeError):
    """An operation that needs the weights, on a Llama built with vocab_only=True
    (llama-cpp-python fails there too: its context has no memory)."""


class VocabOnlySession:
    """The part of `_core.Session` that `Llama` uses for its vocabulary, over
    `_core.Vocab`; every other attribute raises VocabOnlyError."""

    def __init__(self, vocab: Any, n_ctx: int):
        self._vocab = vocab
        self.n_ctx = n_ctx  # what llama-cpp-python's context reports for the asked n_ctx
        self.n_vocab = vocab.n_vocab
        self.token_bos, self.token_eos, self.add_bos = vocab.token_bos, vocab.token_eos, vocab.add_bos
        self.chat_template = vocab.chat_template
        self.tokenize, self.detokenize, self.token_piece = vocab.tokenize, vocab.detokenize, vocab.token_piece
        self.is_eog, self.metadata = vocab.is_eog, vocab.metadata
        self.broken = False  # no devices to lose (what Llama checks before each call, for RPC workers)

    def kernels(self):
        return {}  # no weights, no decode kernels

    def reset(self):
        pass  # nothing is cached (llama-cpp-python's reset works too)

    def reset_ngram_pool(self):
        pass

    def __getattr__(self, name: str):
        raise VocabOnlyError(f"this Llama was built with vocab_only=True: only the vocabulary is loaded, "
                             f"not the weights that {name} needs")
