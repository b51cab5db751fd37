"""The text side of a completion (specbound_cpp.text_stream), without a model:
a toy vocabulary of byte pieces fed in token batches, as the engine's rounds
would feed it. Stop strings and UTF-8 characters split across tokens, held-back
text while streaming, echo, stopping criteria and finish reasons."""

from __future__ import annotations

from specbound_cpp.text_stream import CompletionText, CriteriaInput, completion_text, final_text

BOS, EOG = 0, 1
PIECES = {BOS: b"<s>", EOG: b"</s>", 2: b" Hel", 3: b"lo", 4: b" wor", 5: b"ld", 6: b"!", 7: b"\xc3", 8: b"\xa9",
          9: b" caf", 10: b"\xe2\x82", 11: b"\xac"}  # fmt: skip


def detok(tokens):
    out = b"".join(PIECES[t] for t in tokens)
    return out[1:] if tokens and tokens[0] == BOS and out[:1] == b" " else out


def run(batches, stop=(), max_tokens=100, stream=False, engine_reason="length", completion=None, criteria=None):
    """(chunks, CompletionText) after feeding batches; a stream's chunks end with its flush."""
    text = CompletionText(detok, PIECES.__getitem__, lambda t: t == EOG, BOS, list(completion or []), list(stop),
                          max_tokens, stream, criteria)  # fmt: skip
    chunks = list(completion_text(text, iter(batches), lambda: engine_reason))
    if stream:
        chunks += list(text.flush())
    return chunks, text


def streamed(chunks) -> str:
    return "".join(c[0] for c in chunks)


def test_plain_text_and_length():
    _, t = run([[2, 3], [4, 5]], max_tokens=4)
    assert (t.text, t.finish_reason, t.n_eval) == (b" Hello world", "length", 3)
    # the engine stopped first (its own max_tokens, or a full context)
    _, t = run([[2, 3], [4]], max_tokens=10)
    assert (t.text, t.finish_reason, t.n_eval) == (b" Hello wor", "length", 2)


def test_end_of_generation():
    _, t = run([[2, 3, EOG, 4]])
    assert (t.text, t.finish_reason, t.n_eval) == (b" Hello", "stop", 2)
    assert t.completion_tokens == [2, 3]
    # the engine dropped the EOG itself and said "stop": every token was evaluated
    _, t = run([[2, 3]], engine_reason="stop")
    assert (t.text, t.finish_reason, t.n_eval) == (b" Hello", "stop", 2)


def test_stop_string_split_across_tokens():
    _, t = run([[2], [3, 4], [5]], stop=["lo w"])
    assert (t.text, t.finish_reason, t.n_eval) == (b" Hel", "stop", 2)
    chunks, t = run([[2], [3, 4], [5]], stop=["lo w"], stream=True)
    assert streamed(chunks) == " Hel" and chunks[-1] == ("", "stop", None)
    # a stop string that never completes is held back, then flushed at the end
    chunks, t = run([[2], [3]], stop=["lo!"], stream=True)
    assert [c[0] for c in chunks[:-1]] == [" Hel", "lo"] and t.finish_reason == "length"


def test_stop_string_found_after_the_engine_stopped():
    _, t = run([[2, 3, 4]], stop=["wor"], engine_reason="stop")
    assert (t.text, t.finish_reason, t.n_eval) == (b" Hello ", "stop", 2)


def test_utf8_split_across_tokens():
    chunks, t = run([[9, 7], [8, 6]], stream=True)
    assert t.text == b" caf\xc3\xa9!"
    assert streamed(chunks) == " café!" and all("\ufffd" not in c[0] for c in chunks)
    assert " caf" in [c[0] for c in chunks] and "é" in "".join(c[0] for c in chunks[1:])
    # a character split at max_tokens completes past it (llama-cpp-python lets it)
    _, t = run([[9, 10, 11, 6]], max_tokens=2)
    assert t.text == b" caf\xe2\x82\xac" and t.finish_reason == "length" and t.completion_tokens == [9, 10, 11]


def test_stream_equals_text():
    for stop in ([], ["ld"], ["xyz", "o w"]):
        for batches in ([[2, 3, 4, 5, 6]], [[2], [3], [4], [5], [6]]):
            chunks, t = run(batches, stop=stop, stream=True)
            _, whole = run(batches, stop=stop)
            assert streamed(chunks) == whole.text.decode(), (stop, batches)
            assert chunks[-1][1] == whole.finish_reason


def test_empty_prompt_starts_with_bos():
    # llama-cpp-python: the completion of an empty prompt starts with a BOS, whose
    # leading-space fix then applies to the text
    _, t = run([[2, 3]], completion=[BOS], max_tokens=10)
    assert t.text == b"<s> Hello"


def test_stopping_criteria():
    seen = []

    def criteria(input_ids, logits):
        seen.append(list(input_ids))
        return len(input_ids) >= 4  # prompt of 2, then two tokens

    _, t = run([[2, 3], [4, 5]], criteria=CriteriaInput(criteria, [BOS, 2], 10))
    assert t.finish_reason == "stop" and t.text == b" Hello" and t.n_eval == 2
    assert seen[0] == [BOS, 2] and seen[-1] == [BOS, 2, 2, 3]


def test_echo():
    assert final_text(b" world", "Hello", True, detok) == "Hello world"
    assert final_text(b" world", [2, 3], True, detok) == " Hello world"
    assert final_text(b" wor\xc3", "x", False, detok) == " wor"
