"""Constrained output (issue 13): grammar, JSON mode / JSON schema in chat,
logit_bias, logits_processor, typical_p and mirostat, on SmolLM2-135M.

Under SpecBound (forced on, with exits that draft often) the constraint applies
to the full model's choice at each verified position, so the text must be our
plain decoding's, bit for bit, and, greedy, llama-cpp-python's own."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

SPEC = dict(alpha=0.5, tau=0.5, exit_layers=[20, 28], d_max=28)  # drafts often on this 30-layer model


@pytest.fixture(scope="module")
def models(smollm2_path, make_reference):
    from specbound_cpp import Llama

    ours = Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False, **SPEC)
    plain = Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False, specbound=False)
    ref = make_reference(smollm2_path, n_ctx=512)
    return ours, plain, ref


def three_ways(models, call):
    """call(llm) on SpecBound, our plain decoding and llama-cpp-python (each reset first)."""
    out = []
    for llm in models:
        llm.reset()
        out.append(call(llm))
    assert models[0].last_stats["specbound"] and models[0].last_stats["draft_tokens"] > 0
    return out


def chat_text(llm, **kw):
    messages = [{"role": "user", "content": "Describe a cat as JSON with its name and age."}]
    return llm.create_chat_completion(messages, max_tokens=80, temperature=0, **kw)["choices"][0]["message"]["content"]


def test_json_mode(models):
    spec, plain, ref = three_ways(models, lambda llm: chat_text(llm, response_format={"type": "json_object"}))
    assert spec == plain == ref
    assert spec.lstrip().startswith("{")


def test_json_schema(models):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}  # fmt: skip
    fmt = {"type": "json_object", "schema": schema}
    spec, plain, ref = three_ways(models, lambda llm: chat_text(llm, response_format=fmt))
    assert spec == plain == ref
    value = json.loads(spec)
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


def test_grammar(models):
    import llama_cpp

    grammar = llama_cpp.LlamaGrammar.from_string('root ::= ("yes" | "no") ", because " [a-z ]+ "."')
    spec, plain, ref = three_ways(
        models, lambda llm: llm("Is the sky blue? Answer:", max_tokens=40, temperature=0, grammar=grammar)
    )
    texts = [o["choices"][0]["text"] for o in (spec, plain, ref)]
    assert texts[0] == texts[1] == texts[2]
    assert re.fullmatch(r"(yes|no), because [a-z ]+\.", texts[0]), texts[0]
    assert spec["choices"][0]["finish_reason"] == ref["choices"][0]["finish_reason"] == "stop"


def test_bad_grammar_is_a_value_error(models):
    with pytest.raises(ValueError, match="grammar"):
        models[0]("Hi", max_tokens=4, temperature=0, grammar="root ::= (")
    # the object still works
    assert models[0]("Hi", max_tokens=2, temperature=0)["usage"]["completion_tokens"] == 2


def test_logit_bias(models):
    prompt = "The capital of France is"
    free = models[1](prompt, max_tokens=12, temperature=0)["choices"][0]["text"]
    first = models[1].tokenize(free.encode(), add_bos=False)[0]
    # ban the unconstrained first token, as the server's JSON gives it (string keys)
    bias = {str(first): -100.0, "28": 2.5}
    outs = three_ways(models, lambda llm: llm(prompt, max_tokens=12, temperature=0, logit_bias=bias))
    texts = [o["choices"][0]["text"] for o in outs]
    assert texts[0] == texts[1] == texts[2] and texts[0] != free


def test_logit_bias_bad_token_is_a_value_error(models):
    with pytest.raises(ValueError, match="logit_bias"):
        models[0]("Hi", max_tokens=2, temperature=0, logit_bias={10**7: 1.0})


def test_logits_processor(models):
    """A processor that reads input_ids (prompt + generated so far): no newline
    in the first 8 generated tokens."""
    import llama_cpp

    prompt = "The capital of France is"
    n_prompt = len(models[1].tokenize(prompt.encode()))
    newline = models[1].tokenize(b"\n", add_bos=False)[0]

    def no_early_newline(input_ids, scores):
        scores = np.array(scores, copy=True)
        if len(input_ids) < n_prompt + 8:
            scores[newline] = -np.inf
        return scores

    procs = llama_cpp.LogitsProcessorList([no_early_newline])
    free = models[1](prompt, max_tokens=16, temperature=0)["choices"][0]["text"]
    outs = three_ways(models, lambda llm: llm(prompt, max_tokens=16, temperature=0, logits_processor=procs))
    texts = [o["choices"][0]["text"] for o in outs]
    assert texts[0] == texts[1] == texts[2] and texts[0] != free
    assert "\n" not in models[1].detokenize(models[1].tokenize(texts[0].encode(), add_bos=False)[:7]).decode()


def test_logits_processor_error_propagates(models):
    def broken(input_ids, scores):
        raise KeyError("from the processor")

    with pytest.raises(KeyError, match="from the processor"):
        models[0]("Hi", max_tokens=4, temperature=0, logits_processor=[broken])
    assert models[0]("Hi", max_tokens=2, temperature=0)["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize("kw", [dict(typical_p=0.5), dict(mirostat_mode=1, mirostat_tau=3.0),
                                dict(mirostat_mode=2, mirostat_tau=3.0, mirostat_eta=0.2)])  # fmt: skip
def test_seeded_sampling_options_exact_under_specbound(models, kw):
    """typical_p and mirostat (its state follows the emitted tokens, so it needs
    no switch-off): SpecBound's seeded text is plain decoding's, and the
    option changes the text."""
    ours, plain, _ = models
    prompt = "Once upon a time, in a small village,"
    args = dict(max_tokens=40, temperature=0.9, top_k=0, top_p=1.0, min_p=0.0, seed=1234)
    texts = []
    for llm in (ours, plain):
        llm.reset()
        texts.append(llm(prompt, **args, **kw)["choices"][0]["text"])
    assert ours.last_stats["specbound"] and ours.last_stats["draft_tokens"] > 0
    assert texts[0] == texts[1]
    plain.reset()
    assert plain(prompt, **args)["choices"][0]["text"] != texts[1]


def test_abandoned_stream_with_processor_is_collected(smollm2_path):
    """The engine only borrows a logits processor during each call: an abandoned
    stream whose processor reaches the Llama (a reference cycle) is garbage
    collected, model and all, instead of leaking through C++."""
    import gc
    import weakref

    from specbound_cpp import Llama

    llm = Llama(smollm2_path, n_ctx=256, n_threads=2, verbose=False)
    holder = {"llm": llm}

    def processor(input_ids, scores):
        assert holder["llm"] is not None
        return scores

    stream = llm("Hi", max_tokens=30, temperature=0, stream=True, logits_processor=[processor])
    next(stream)
    holder["stream"] = stream
    alive = weakref.ref(llm)
    del llm, stream, processor, holder
    gc.collect()
    assert alive() is None
