"""The exit head's vocabulary grows with each request's own tokens.

Llama sets the calibrated candidates plus the prompt's tokens at the start of
every request; the engine then adds each token the request emits
(Engine::add_candidate), so a word said once can be drafted from then on. The
growth changes which drafts are possible, never the output."""

from __future__ import annotations

from conftest import N_THREADS

from specbound_cpp import Llama

PROMPT = "Ingredients for a Hungarian goulash:\n1."


def _llama(path, **kw):
    return Llama(path, n_ctx=512, n_threads=N_THREADS, n_threads_batch=N_THREADS, verbose=False, **kw)


def _prompt_tokens(llm, text: str) -> set:
    b = text.encode()
    return set(llm.tokenize(b, add_bos=True)) | set(llm.tokenize(b, add_bos=False))


def test_emitted_tokens_join_the_exit_vocabulary(smollm2_path):
    llm = _llama(smollm2_path, specbound=True, spec_gate=False)
    base = set(llm._candidates)
    assert base and llm._spec.exit_layers
    out = llm(PROMPT, max_tokens=64, temperature=0)
    s = llm._session
    cand = list(s.candidates)
    assert len(cand) == len(set(cand))  # each token once
    emitted = list(s.new_tokens(0))
    assert emitted and set(emitted) <= set(cand)
    new = set(emitted) - base - _prompt_tokens(llm, PROMPT)
    assert llm.last_stats["exit_vocab_added"] == len(new) > 0
    assert set(cand) <= base | _prompt_tokens(llm, PROMPT) | set(emitted)

    # the next request starts again from the calibrated set and its own prompt
    llm("Hello", max_tokens=4, temperature=0)
    again = set(s.candidates)
    assert not (new & again) - set(s.new_tokens(0)) - _prompt_tokens(llm, "Hello")

    plain = _llama(smollm2_path, specbound=False)
    assert plain(PROMPT, max_tokens=64, temperature=0)["choices"][0]["text"] == out["choices"][0]["text"]


def test_no_growth_without_exit_drafting(smollm2_path):
    llm = _llama(smollm2_path, specbound=True, spec_gate=False, exit_layers=[])
    llm(PROMPT, max_tokens=32, temperature=0)
    assert llm.last_stats["exit_vocab_added"] == 0
