"""The text side of a completion, as llama-cpp-python 0.3.36 does it.

A port of `llama_cpp.Llama._create_completion`'s loop over sampled tokens:
end-of-generation tokens, stop strings (also split across tokens), text held
back while it may still become a stop string, incomplete UTF-8 (a character
split over tokens may complete up to 3 tokens past max_tokens), the
`stopping_criteria` input buffer, and the final flush of a stream. It works
on token batches (one per engine round) through a detokenizer, with no model,
so that both libraries turn the same tokens into the same text and the same
stream chunks. Quirks of the original are kept on purpose.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

# one stream chunk: (text, finish_reason, logprobs)
Chunk = Tuple[str, Optional[str], Optional[dict]]
# (index of the completion token, token, offset_in_bytes) -> that chunk's logprobs
TokenLogprobs = Callable[[int, int, bool], dict]


class CriteriaInput:
    """llama-cpp-python's input_ids buffer (prompt, then the tokens sampled) as
    its `stopping_criteria` see it; they get None for the logits."""

    def __init__(self, criteria: Callable, prompt_tokens: Sequence[int], max_tokens: int):
        self._criteria = criteria
        self._n_prompt = len(prompt_tokens)
        self._ids = np.empty(self._n_prompt + max_tokens + 1, dtype=np.intc)
        self._ids[: self._n_prompt] = prompt_tokens
        self._n = 0

    def push(self, token: int) -> Any:
        """Records a sampled token; the criteria's verdict on the tokens before it."""
        self._n += 1
        if self._n_prompt + self._n > len(self._ids):
            self._ids = np.resize(self._ids, 2 * len(self._ids))
        self._ids[self._n_prompt + self._n - 1] = token
        return self._criteria(self._ids[: self._n_prompt + self._n - 1], None)

    def holds(self, n_eval: int) -> Any:
        return self._criteria(self._ids[: self._n_prompt + n_eval], None)


def _held_back(text: bytes, stop_sequences: List[bytes]) -> int:
    """Length of the longest tail of `text` that begins a stop sequence."""
    first_stop_position = 0
    for s in stop_sequences:
        for i in range(min(len(s), len(text)), 0, -1):
            if text.endswith(s[:i]):
                if i > first_stop_position:
                    first_stop_position = i
                break
    return first_stop_position


def _utf8_incomplete(text: bytes) -> int:
    """llama-cpp-python's multibyte_fix: how many more tokens an incomplete
    UTF-8 character at the end of `text` needs (its own count, kept as is)."""
    fix = 0
    for k, char in enumerate(text[-3:]):
        k = 3 - k
        for num, pattern in [(2, 192), (3, 224), (4, 240)]:
            if num > k and pattern & char == pattern:
                fix = num - k
    return fix


def _decode(b: bytes) -> str:
    return b.decode("utf-8", errors="ignore")


class CompletionText:
    """The text of one completion, fed the sampled tokens batch by batch.

    `completion_tokens` starts as given ([BOS] after an empty prompt) and grows
    by the tokens kept. After `feed` sets `done` (or `engine_stopped` is called
    when the tokens ran out first) and `check_criteria`, `text` and
    `finish_reason` hold the result, `n_eval` how many of `generated` the model
    evaluated; a stream then yields `flush()`'s chunks.
    """

    def __init__(self, detok: Callable[[List[int]], bytes], piece: Callable[[int], bytes],
                 is_eog: Callable[[int], bool], bos: int, completion_tokens: List[int], stop: Sequence[str],
                 max_tokens: int, stream: bool, criteria: Optional[CriteriaInput] = None,
                 token_logprobs: Optional[TokenLogprobs] = None):  # fmt: skip
        self._detok, self._piece, self._is_eog, self._bos = detok, piece, is_eog, bos
        self.completion_tokens = completion_tokens
        self._stop = [s.encode("utf-8") for s in stop]
        self._max_tokens, self._stream = max_tokens, stream
        self._criteria, self._lp = criteria, token_logprobs
        self.text = b""
        self.finish_reason = "length"
        self.generated: List[int] = []  # every token sampled, EOG included
        self.n_eval: Optional[int] = None  # set where llama-cpp-python stops
        self.returned_tokens = 0
        self._multibyte_fix = 0
        # detokenize(completion_tokens) without the leading-space fix
        self._raw = b"".join(piece(t) for t in completion_tokens)

    @property
    def done(self) -> bool:
        return self.n_eval is not None

    def feed(self, batch: Iterable[int]) -> Iterator[Chunk]:
        """One batch of sampled tokens: the stream chunks they release."""
        for token in batch:
            yield from self._token(token)
            if self.done:
                return

    def _end(self, text: Optional[bytes], finish_reason: Optional[str]) -> None:
        if text is not None:
            self.text = text
        if finish_reason is not None:
            self.finish_reason = finish_reason
        self.n_eval = len(self.generated) - 1

    def _token(self, token: int) -> Iterator[Chunk]:
        self.generated.append(token)
        if self._criteria is not None and self._criteria.push(token):
            return self._end(None, None)
        if self._is_eog(token):
            return self._end(self._detok(self.completion_tokens), "stop")
        tokens = self.completion_tokens
        tokens.append(token)
        self._raw += self._piece(token)
        all_text = self._raw[1:] if tokens[0] == self._bos and self._raw[:1] == b" " else self._raw
        fix = _utf8_incomplete(all_text)
        if fix > 0:
            self._multibyte_fix = fix
        if self._multibyte_fix > 0:  # stop incomplete bytes from passing
            self._multibyte_fix -= 1
            return
        any_stop = [s for s in self._stop if s in all_text]
        if any_stop:
            return self._end(all_text[: all_text.index(any_stop[0])], "stop")
        if self._stream:
            yield from self._release()
        if len(tokens) >= self._max_tokens:
            self._end(self._detok(tokens), "length")

    def _release(self) -> Iterator[Chunk]:
        """While streaming: the text of the tokens not yet returned, but what may
        begin a stop sequence; with logprobs one chunk per token."""
        detok = self._detok
        remaining_tokens = self.completion_tokens[self.returned_tokens :]
        remaining_text = detok(remaining_tokens)
        limit = len(remaining_text) - _held_back(remaining_text, self._stop)
        token_end_position = 0
        if self._lp is not None:
            for token in remaining_tokens:
                if token == self._bos:
                    continue
                token_end_position += len(detok([token]))
                if token_end_position > limit:
                    break
                lp = self._lp(self.returned_tokens, token, False)
                self.returned_tokens += 1
                yield _decode(detok([token])), None, lp
            remaining_tokens = []
        while len(remaining_tokens) > 0:
            for i in range(1, len(remaining_tokens) + 1):
                try:
                    bs = detok(remaining_tokens[:i])
                    ts = bs.decode("utf-8")
                    break
                except UnicodeError:
                    pass
            else:
                break
            token_end_position += len(bs)
            if token_end_position > limit:
                break
            remaining_tokens = remaining_tokens[i:]
            self.returned_tokens += i
            yield ts, None, None

    def engine_stopped(self, engine_finish_reason: str) -> None:
        """The sampled tokens ran out first: the engine stopped on an end of
        generation token (which it drops), a stop string, length or a full context."""
        text = self._detok(self.completion_tokens)
        finish_reason = engine_finish_reason or "length"
        any_stop = [s for s in self._stop if s in text]
        if any_stop:
            text = text[: text.index(any_stop[0])]
            finish_reason = "stop"
        self.text, self.finish_reason = text, finish_reason
        self.n_eval = len(self.generated) - (0 if finish_reason == "stop" and not any_stop else 1)

    def check_criteria(self) -> None:
        if self._criteria is not None and self._criteria.holds(self.n_eval):
            self.text = self._detok(self.completion_tokens)
            self.finish_reason = "stop"

    def flush(self) -> Iterator[Chunk]:
        """The end of a stream: the text not yet returned, cut at a stop
        sequence, then the chunk with the finish reason."""
        detok = self._detok
        remaining_tokens = self.completion_tokens[self.returned_tokens :]
        remaining_text = detok(remaining_tokens)
        any_stop = [s for s in self._stop if s in remaining_text]
        end = min(remaining_text.index(s) for s in any_stop) if any_stop else len(remaining_text)
        token_end_position = 0
        for token in remaining_tokens:
            token_end_position += len(detok([token]))
            lp = None
            if self._lp is not None:
                if token == self._bos:
                    continue
                lp = self._lp(self.returned_tokens, token, True)
            if token_end_position >= end:
                last_text = detok([token])
                if token_end_position == end - 1:
                    break
                self.returned_tokens += 1
                yield _decode(last_text[: len(last_text) - (token_end_position - end)]), None, lp
                break
            self.returned_tokens += 1
            yield _decode(detok([token])), None, lp
        yield "", self.finish_reason, None


def final_text(text: bytes, prompt: Any, echo: bool, detok: Callable[[List[int]], bytes]) -> str:
    """A completion's text (stream=False): with echo, after the prompt (as
    given, or its tokens' text)."""
    out = _decode(text)
    if echo:
        out = (prompt if isinstance(prompt, str) else _decode(detok(prompt))) + out
    return out


def completion_text(text: CompletionText, batches: Iterable[List[int]],
                    engine_finish_reason: Callable[[], str]) -> Iterator[Chunk]:  # fmt: skip
    """Feeds `batches` to `text` until it is done (or the batches end, when the
    engine's finish reason decides), then applies the stopping criteria.
    Yields the chunks released while streaming; flush() is the caller's."""
    for batch in batches:
        yield from text.feed(batch)
        if text.done:
            break
    else:
        text.engine_stopped(engine_finish_reason())
    text.check_criteria()
