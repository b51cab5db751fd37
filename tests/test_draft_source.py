"""A draft source added in one file: cpp/testing/toy_draft_source.cpp proposes
the tokens of a fixed text (up to 4 a round) through the interface of
cpp/speculation/source.h, joined to the speculation controller by one call.
Whatever it proposes - plain decoding's own continuation (nearly every draft
accepted) or a wrong text (every draft rejected) - SpecBound emits plain
decoding's tokens, token for token, on SmolLM2-135M."""

from __future__ import annotations

from conftest import gen

from specbound_cpp import _core
from specbound_cpp.params import stats_dict

PROMPT = "The history of the printing press begins in the fifteenth century, when"
N_TOKENS = 48
# only the toy source drafts: no lookup, no exit layers, no gate
TOY_ONLY = dict(alpha=0.5, tau=0.9, exit_layers=[], d_max=0, w_max=6, ngram=0)


def _toy_run(make_session, path, prompt, text, first_pos):
    s = make_session(path, n_ctx=256)
    s.set_candidates(sorted(set(range(1024)) | set(prompt)))
    _core.testing.add_fixed_text_source(s, text, first_pos, 4)
    r = gen(s, prompt, N_TOKENS, specbound=True, spec=TOY_ONLY)
    return list(r["tokens"]), stats_dict(s)


def test_toy_source_keeps_output_exact(make_session, smollm2_path):
    plain_sess = make_session(smollm2_path, n_ctx=256)
    prompt = list(plain_sess.tokenize(PROMPT.encode(), True, False))
    plain = list(gen(plain_sess, prompt, N_TOKENS)["tokens"])
    assert len(plain) == N_TOKENS

    # plain decoding's continuation: text[j] is the token at position len(prompt) + j
    right, st = _toy_run(make_session, smollm2_path, prompt, plain, len(prompt))
    assert right == plain
    assert st["draft_tokens"] > 0 and st["accepted_tokens"] == st["draft_tokens"], st
    assert st["emitted_tokens"] > st["rounds"], st  # several tokens a round

    # a wrong text: every draft rejected, the same tokens
    wrong_token = next(t for t in range(1000, 2000) if t not in plain)
    wrong, st = _toy_run(make_session, smollm2_path, prompt, [wrong_token] * 2 * N_TOKENS, len(prompt))
    assert wrong == plain
    assert st["draft_tokens"] > 0 and st["accepted_tokens"] == 0, st
