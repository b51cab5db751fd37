"""specbound_cpp.Llama against llama_cpp.Llama: the same application code gives
the same text and the same result structure. Real model (SmolLM2 135M), short
generations, plain decoding (specbound=False) so that the comparison is with
llama.cpp's own greedy decoding. The reference is conftest's (flash attention,
2 threads, no weight repacking: like for like with our engine)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from specbound_cpp.llama import Llama

N = 48
ARGS = dict(n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False)


@pytest.fixture(scope="module")
def path(smollm2_path):
    return smollm2_path


@pytest.fixture(scope="module")
def ref(path, make_reference):
    return make_reference(path, n_ctx=512)


@pytest.fixture(scope="module")
def llm(path):
    return Llama(path, specbound=False, **ARGS)


def shape(x):
    """Keys and value types, recursively (ids, timestamps and texts aside)."""
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}
    if isinstance(x, list):
        return [shape(v) for v in x]
    return type(x).__name__


def both(ref, llm, fn):
    """Run the same code on both objects, each from an empty cache."""
    out = []
    for obj in (ref, llm):
        obj.reset()
        r = fn(obj)
        out.append(list(r) if not isinstance(r, dict) else r)
    return out


def test_completion_with_stop(ref, llm):
    a, b = both(ref, llm, lambda m: m("def fibonacci(n):", max_tokens=N, temperature=0, stop=["\n\n", "```"]))
    assert b["choices"] == a["choices"]
    assert b["usage"] == a["usage"]
    assert shape(b) == shape(a)
    assert b["object"] == "text_completion" and b["id"].startswith("cmpl-") and b["model"] == llm.model_path
    assert b["choices"][0]["finish_reason"] in ("stop", "length")


def test_completion_multibyte_at_max_tokens(ref, llm):
    # llama-cpp-python lets the last character complete past max_tokens
    prompt = "\u4e2d\u6587\uff1a\u4f60\u597d\uff0c\u4e16\u754c\u3002\u6211\u4eec"
    a, b = both(ref, llm, lambda m: m(prompt, max_tokens=24, temperature=0))
    assert (b["choices"], b["usage"]) == (a["choices"], a["usage"])


def test_completion_stop_string_trims(ref, llm):
    a, b = both(ref, llm, lambda m: m("The capital of France is", max_tokens=N, temperature=0, stop="."))
    assert b["choices"] == a["choices"]
    assert b["choices"][0]["finish_reason"] == "stop" and "." not in b["choices"][0]["text"]


@pytest.mark.parametrize(
    "prompt,stop,n",
    [("Once upon a time", ["dragon"], N),
     ("Emoji list: \U0001F600 \U0001F603 \U0001F604", ["\U0001F601"], 24)],  # characters split over tokens
)  # fmt: skip
def test_stream_completion(ref, llm, prompt, stop, n):
    a, b = both(ref, llm, lambda m: m(prompt, max_tokens=n, temperature=0, stop=stop, stream=True))
    assert [c["choices"] for c in b] == [c["choices"] for c in a]
    assert shape(b) == shape(a)
    assert len({c["id"] for c in b}) == 1 and b[-1]["choices"][0]["finish_reason"] is not None
    assert all(c["choices"][0]["finish_reason"] is None for c in b[:-1])


def test_chat_completion(ref, llm):
    msgs = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colors."}]
    a, b = both(ref, llm, lambda m: m.create_chat_completion(msgs, max_tokens=N, temperature=0))
    assert b["choices"] == a["choices"]
    assert b["usage"] == a["usage"]
    assert shape(b) == shape(a)
    assert b["object"] == "chat.completion" and b["id"].startswith("chatcmpl-")


def test_stream_chat_completion(ref, llm):
    msgs = [{"role": "user", "content": "Say hello in French."}]
    a, b = both(ref, llm, lambda m: m.create_chat_completion(msgs, max_tokens=N, temperature=0, stream=True))
    assert [c["choices"] for c in b] == [c["choices"] for c in a]
    assert shape(b) == shape(a)
    assert b[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert all(c["object"] == "chat.completion.chunk" for c in b)


@pytest.mark.parametrize(
    "prompt,stop",
    [("Emoji list: \U0001F600 \U0001F603 \U0001F604", ["\U0001F601"]),
     ("\u4e2d\u6587\uff1a\u4f60\u597d\uff0c\u4e16\u754c\u3002\u6211\u4eec", ["\u7f8e\u56fd"])],
)  # fmt: skip
def test_same_tokens_same_text(ref, llm, monkeypatch, prompt, stop):
    """The text layer alone (multi-byte UTF-8, stop strings, held-back stream
    text), fed with llama.cpp's own tokens: identical to llama-cpp-python."""
    tokens = []
    generate = ref.generate

    def recording_generate(*a, **k):
        for t in generate(*a, **k):
            tokens.append(t)
            yield t

    def replay(prompt_tokens, args, stream, state, keep_logits=False, constraints=None):
        state["result"] = dict(tokens=list(tokens), finish_reason="length", n_prompt=len(prompt_tokens),
                               n_prompt_reused=0, prompt_ms=1.0, decode_ms=1.0, rounds=len(tokens))  # fmt: skip
        yield from ([t] for t in tokens) if stream else [list(tokens)]

    monkeypatch.setattr(ref, "generate", recording_generate)
    monkeypatch.setattr(llm, "_rounds", replay)
    for stream in (False, True):
        tokens.clear()
        a = ref(prompt, max_tokens=24, temperature=0, stop=stop, stream=stream)
        a = [c["choices"] for c in a] if stream else (a["choices"], a["usage"])
        b = llm(prompt, max_tokens=24, temperature=0, stop=stop, stream=stream)
        b = [c["choices"] for c in b] if stream else (b["choices"], b["usage"])
        assert b == a


def test_tokenize_detokenize(ref, llm):
    texts = ["Hello, world!", " leading space", "caf\u00e9 \u4e2d\u6587 \U0001F600",
             "<|im_start|>user\nhi<|im_end|>", ""]  # fmt: skip
    for t in texts:
        data = t.encode()
        for add_bos in (True, False):
            for special in (True, False):
                toks = llm.tokenize(data, add_bos=add_bos, special=special)
                assert toks == ref.tokenize(data, add_bos=add_bos, special=special)
                for sp in (True, False):
                    assert llm.detokenize(toks, special=sp) == ref.detokenize(toks, special=sp)
        assert llm.detokenize(llm.tokenize(data, special=True), special=True) == data
    ids = [llm.token_bos(), llm.token_eos()]
    assert llm.detokenize(ids, special=True) == ref.detokenize(ids, special=True)
    assert (llm.n_ctx(), llm.n_vocab(), llm.token_bos(), llm.token_eos()) == (
        ref.n_ctx(), ref.n_vocab(), ref.token_bos(), ref.token_eos())  # fmt: skip
    assert llm.chat_format == ref.chat_format
    assert llm.metadata["general.architecture"] == ref.metadata["general.architecture"]


def test_detokenize_keeps_pieces_over_32_bytes(qwen05_path):
    """Runs of spaces (indented code) and separator lines are single tokens of
    more than 32 bytes in these vocabularies. llama-cpp-python 0.3.36 detokenizes
    each through a 32-byte buffer and drops those pieces from its text
    (abetlen/llama-cpp-python#2362); ours keeps them: the same tokens, whole text."""
    llm = Llama(qwen05_path, vocab_only=True, verbose=False)  # Qwen2.5's vocabulary has such pieces
    for text in (" " * 64 + "X", "#" + "-" * 64 + "\n", "x = 1\n" + " " * 40 + "return x"):
        toks = llm.tokenize(text.encode(), add_bos=False)
        pieces = [llm.detokenize([t]) for t in toks]
        assert max(len(p) for p in pieces) > 32, (text, pieces)  # the case this test is about
        assert llm.detokenize(toks) == text.encode()
        assert b"".join(pieces) == text.encode()


def test_prompt_too_long_then_usable(llm):
    prompt = list(llm.tokenize(b"word " * 600, add_bos=False))
    with pytest.raises(ValueError, match=r"Requested tokens \(\d+\) exceed context window of 512"):
        llm(prompt, max_tokens=4)
    with pytest.raises(ValueError, match="exceed context window"):
        list(llm(prompt, max_tokens=4, stream=True))
    out = llm("The sky is", max_tokens=4, temperature=0)
    assert out["usage"]["completion_tokens"] > 0


def test_invalid_params(path, llm, tmp_path):
    for bad in (dict(n_ctx=-1), dict(n_batch=0), dict(n_threads=0), dict(n_threads_batch=-2), dict(n_gpu_layers=-2)):
        with pytest.raises(ValueError):
            Llama(path, verbose=False, **bad)
    with pytest.raises(FileNotFoundError, match="no-such-model.gguf"):
        Llama(str(tmp_path / "no-such-model.gguf"), verbose=False)
    with pytest.raises((IsADirectoryError, ValueError), match=str(tmp_path)):
        Llama(str(tmp_path), verbose=False)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF\x03\x00\x00\x00 this is not a model")
    with pytest.raises((ValueError, RuntimeError), match="junk.gguf"):
        Llama(str(junk), verbose=False)
    for bad in (dict(temperature=-0.5), dict(top_p=0.0), dict(top_p=1.5), dict(min_p=-0.1), dict(min_p=2.0),
                dict(stop=5), dict(stop=["ok", 3]), dict(repeat_penalty="x"), dict(presence_penalty=None)):  # fmt: skip
        with pytest.raises(ValueError):
            llm("Hi", max_tokens=2, **bad)
    for bad in (dict(temperature=0.5, mirostat_mode=3), dict(temperature=0.5, typical_p=0.0),
                dict(logit_bias={"x": 1.0}), dict(temperature=0.5, typical_p="x")):  # fmt: skip
        with pytest.raises(ValueError):
            llm("Hi", max_tokens=2, **bad)
    with pytest.raises(TypeError):
        llm("Hi", max_tokens=2, grammar=42)
    with pytest.raises(ValueError, match="logits_all"):
        llm("Hi", max_tokens=2, logprobs=3)


def test_unknown_kwarg(path, llm):
    with pytest.raises(TypeError):
        Llama(path, verbose=False, no_such_option=1)
    with pytest.raises(TypeError):
        llm("Hi", no_such_option=1)
    with pytest.raises(TypeError):
        llm.create_chat_completion([{"role": "user", "content": "Hi"}], no_such_option=1)
    # llama-cpp-python's harmless options are accepted
    Llama(path, verbose=False, use_mmap=False, use_mlock=False, n_ubatch=128, flash_attn=True, last_n_tokens_size=32,
          offload_kqv=False, numa=False, no_perf=True, specbound=False)  # fmt: skip


def test_last_stats(llm):
    llm.reset()
    llm("The sky is", max_tokens=6, temperature=0)
    st = llm.last_stats
    for k in ("prompt_tokens", "prompt_tokens_reused", "completion_tokens", "prompt_ms", "decode_ms",
              "tokens_per_second", "rounds", "specbound"):  # fmt: skip
        assert k in st, k
    assert st["specbound"] is False and st["prompt_tokens_reused"] == 0
    llm("The sky is", max_tokens=6, temperature=0)
    assert llm.last_stats["prompt_tokens_reused"] == llm.last_stats["prompt_tokens"] - 1


def test_prefix_reuse_same_text(llm):
    llm.reset()
    first = llm("The best thing about summer is", max_tokens=24, temperature=0)["choices"][0]["text"]
    again = llm("The best thing about summer is", max_tokens=24, temperature=0)["choices"][0]["text"]
    assert llm.last_stats["prompt_tokens_reused"] > 0
    assert again == first


def test_seeded_sampling(llm):
    a = llm("My favourite animal is", max_tokens=8, temperature=0.9, seed=7)["choices"][0]["text"]
    b = llm("My favourite animal is", max_tokens=8, temperature=0.9, seed=7)["choices"][0]["text"]
    assert a == b


def test_threads_share_one_object(llm):
    # distinct first tokens: no prompt shares a cached prefix with another, so
    # every result is independent of the order the threads run in
    prompts = ["Paris is", "Water boils at", "In 1492,", "Cats like"]
    llm.reset()
    expected = {}
    for p in prompts:
        llm.reset()
        expected[p] = llm(p, max_tokens=10, temperature=0)["choices"][0]["text"]
    got, errors = {}, []

    def worker(ps, stream):
        try:
            for p in ps:
                if stream:
                    got[p] = "".join(c["choices"][0]["text"] for c in llm(p, max_tokens=10, temperature=0, stream=True))
                else:
                    got[p] = llm(p, max_tokens=10, temperature=0)["choices"][0]["text"]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(prompts[:2], True)),
               threading.Thread(target=worker, args=(prompts[2:], False))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and got == expected


def test_unfinished_stream_blocks_then_releases(llm):
    it = llm("Once upon a time", max_tokens=20, temperature=0, stream=True)
    next(it)
    with pytest.raises(RuntimeError, match="in progress"):
        llm("Hi", max_tokens=2)
    it.close()
    assert llm("Hi", max_tokens=2, temperature=0)["usage"]["completion_tokens"] > 0


def test_stream_resumed_from_other_threads(llm):
    llm.reset()
    expected = llm("Once upon a time", max_tokens=12, temperature=0)["choices"][0]["text"]
    llm.reset()
    it = llm("Once upon a time", max_tokens=12, temperature=0, stream=True)
    parts = [next(it)["choices"][0]["text"]]  # started here, finished by two other threads
    other = []
    waiter = threading.Thread(target=lambda: other.append(llm("Hi", max_tokens=2, temperature=0)))
    waiter.start()  # waits for the stream to finish
    for _ in range(2):
        t = threading.Thread(target=lambda: parts.extend(c["choices"][0]["text"] for c in it))
        t.start()
        t.join(60)
    waiter.join(60)
    assert "".join(parts) == expected
    assert other and other[0]["usage"]["completion_tokens"] > 0


class _Interrupt(Exception):
    pass


def test_interrupt_leaves_object_usable(llm):
    def handler(signum, frame):
        raise _Interrupt()

    old = signal.signal(signal.SIGINT, handler)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(_Interrupt):
            llm("Once upon a time", max_tokens=-1, temperature=0)  # until the context is full: far > 0.5 s
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
    out = llm("The sky is", max_tokens=4, temperature=0)
    assert out["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(
    "pen", [dict(repeat_penalty=1.3), dict(frequency_penalty=0.5, presence_penalty=0.3)], ids=["repeat", "freq+presence"]
)
def test_penalties_like_llama_cpp(ref, llm, path, pen):
    """repeat/frequency/presence penalties: llama-cpp-python's greedy text, and the
    same text again with SpecBound on (verification applies the penalties)."""
    prompts = ["List the planets of the solar system:", "def fibonacci(n):"]
    spec = Llama(path, exit_layers=[10, 20], tau=0.3, **ARGS)
    for prompt in prompts:
        a, b = both(ref, llm, lambda m: m(prompt, max_tokens=N, temperature=0, **pen))
        assert b["choices"] == a["choices"], (prompt, pen)
        spec.reset()
        c = spec(prompt, max_tokens=N, temperature=0, **pen)
        assert c["choices"][0]["text"] == a["choices"][0]["text"], (prompt, pen)
        assert spec.last_stats["specbound"] and spec.last_stats["draft_tokens"] > 0
        ref.reset()
        plain = ref(prompt, max_tokens=N, temperature=0)
        assert plain["choices"][0]["text"] != a["choices"][0]["text"]  # the penalties change the text


def application(llm) -> dict:
    """A small llama-cpp-python application: completion with a stop string, chat,
    streaming chat, streaming completion, tokenize round trip. Nothing in it
    knows which library `llm` comes from."""
    llm.reset()
    out = {}
    out["completion"] = llm("def is_prime(n):", max_tokens=40, temperature=0, stop=["\n\n"])
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a blue fruit."}]
    out["chat"] = llm.create_chat_completion(messages, max_tokens=24, temperature=0)
    out["chat_stream"] = list(llm.create_chat_completion(messages, max_tokens=24, temperature=0, stream=True))
    out["completion_stream"] = list(llm("Three facts about owls:\n1.", max_tokens=32, temperature=0, stream=True,
                                        stop=["4."]))  # fmt: skip
    text = "Tokenize me: caf\u00e9, \u4e2d\u6587!"
    toks = llm.tokenize(text.encode())
    out["round_trip"] = (toks, llm.detokenize(toks).decode())
    return out


def texts(out: dict) -> dict:
    """What the user reads from each result (ids and timestamps aside)."""
    return {
        "completion": out["completion"]["choices"],
        "usage": out["completion"]["usage"],
        "chat": out["chat"]["choices"],
        "chat_stream": [c["choices"] for c in out["chat_stream"]],
        "completion_stream": [c["choices"] for c in out["completion_stream"]],
        "round_trip": out["round_trip"],
    }


@pytest.mark.parametrize("specbound", [False, True], ids=["plain", "specbound"])
def test_same_application_same_results(ref, path, specbound):
    """The same application code against llama_cpp.Llama and specbound_cpp.Llama:
    identical greedy text and identical dict structure, with and without SpecBound."""
    llm = Llama(path, specbound=specbound, **({"exit_layers": [10, 20], "tau": 0.3} if specbound else {}), **ARGS)
    a, b = application(ref), application(llm)
    assert texts(b) == texts(a)
    assert {k: shape(v) for k, v in b.items()} == {k: shape(v) for k, v in a.items()}
    assert b["round_trip"][1] == "Tokenize me: caf\u00e9, \u4e2d\u6587!"
    assert len(b["completion_stream"]) > 3 and len(b["chat_stream"]) > 3
    if specbound:
        assert llm.last_stats["specbound"] and llm.last_stats["draft_tokens"] > 0


def test_generation_until_context_full(ref, llm):
    """max_tokens=-1: generate until the context is full, finish_reason "length",
    exactly as llama-cpp-python (n_ctx 512; a prompt that never ends by itself)."""
    prompt = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
    a, b = both(ref, llm, lambda m: m(prompt, max_tokens=-1, temperature=0))
    assert b["choices"][0]["finish_reason"] == a["choices"][0]["finish_reason"] == "length"
    assert b["usage"] == a["usage"]
    assert b["usage"]["total_tokens"] == llm.n_ctx()
    assert b["choices"][0]["text"] == a["choices"][0]["text"]


def test_memory_does_not_grow(path, record_property):
    """200 generations in a row (completion, streaming, chat, varied prompts) on
    one object: resident memory levels off after the first few."""
    import psutil

    proc = psutil.Process()
    llm = Llama(path, **ARGS)
    prompts = [f"Item {i}: the {w} of" for i, w in enumerate(["colour", "size", "shape", "weight", "age"] * 8)]
    rss = []
    for i in range(200):
        p = prompts[i % len(prompts)]
        if i % 4 == 0:
            list(llm(p, max_tokens=8, temperature=0.7, seed=i, stream=True))
        elif i % 4 == 1:
            llm.create_chat_completion([{"role": "user", "content": p}], max_tokens=8, temperature=0)
        else:
            llm(p, max_tokens=8, temperature=0)
        if i in (19, 99, 199):
            rss.append(proc.memory_info().rss)
    grow = (rss[2] - rss[0]) / 2**20
    msg = f"RSS after 20 / 100 / 200 generations: " + " / ".join(f"{r / 2**20:.1f}" for r in rss) + " MiB"
    print(msg)
    record_property("rss", msg)
    assert grow < 8, msg


@pytest.mark.parametrize("specbound", [False, True], ids=["plain", "specbound"])
def test_logprobs_like_llama_cpp(path, make_reference, specbound):
    """logprobs (logits_all=True, as llama-cpp-python requires): the same dict as
    llama-cpp-python's - tokens, text offsets, top lists, values bit for bit
    (the engine keeps the logits row that chose each token, in both modes)."""
    ref = make_reference(path, n_ctx=512, logits_all=True)
    kw = dict(exit_layers=[10, 20], tau=0.3) if specbound else {}
    llm = Llama(path, specbound=specbound, logits_all=True, **kw, **ARGS)
    for prompt, echo in (("The capital of France is", False), ("def add(a, b):", True)):
        a, b = both(ref, llm, lambda m: m(prompt, max_tokens=16, temperature=0, logprobs=3, echo=echo))
        assert b["choices"] == a["choices"], (prompt, echo)
        assert b["choices"][0]["logprobs"]["token_logprobs"][-1] is not None
    messages = [{"role": "user", "content": "Say hi."}]
    a, b = both(ref, llm, lambda m: m.create_chat_completion(messages, max_tokens=8, temperature=0, logprobs=True,
                                                            top_logprobs=2))  # fmt: skip
    assert b["choices"] == a["choices"]
    # streamed: one chunk per token with its logprobs, held back at a stop as llama-cpp-python does
    cases = (("The capital of France is", dict(max_tokens=16)), ("Count: 1, 2, 3,", dict(max_tokens=20, stop=[", 7"])))
    for prompt, kw in cases:
        a, b = both(ref, llm, lambda m: [c["choices"][0] for c in m(prompt, temperature=0, logprobs=3, stream=True,
                                                                      **kw)])  # fmt: skip
        assert b == a and len(a) > 3 and a[0]["logprobs"]["token_logprobs"][0] is not None
    a, b = both(ref, llm, lambda m: [c["choices"] for c in m.create_chat_completion(
        messages, max_tokens=8, temperature=0, logprobs=True, top_logprobs=2, stream=True)])  # fmt: skip
    assert b == a and a[1][0]["logprobs"]["content"][0]["logprob"] < 0
