"""Acceptance of a SpecBound round (cpp/speculation/accept.h) on synthetic logits.

No model: the test entry point _core.testing.accept_drafts (with a bound SamplingParams) runs acceptance on logits
rows given here. Row i chooses the token at position first_pos + i; draft i
stands iff it equals that choice; every choice is emitted (the accepted drafts,
then the correction or the bonus token). _core.testing.sample_token is the sampler of
plain decoding on one row: acceptance must pick exactly what it picks, one
position at a time, with the tokens before each position (accepted drafts
included) as the generated history.
"""

from __future__ import annotations

import numpy as np
import pytest

from specbound_cpp import _core
from specbound_cpp.params import sampling_params

N_VOCAB = 64
GREEDY = dict(temperature=0.0)
SAMPLING = dict(temperature=0.9, top_k=20, top_p=0.95, min_p=0.02)


def accept(logits, drafts, first_pos, emitted, **knobs) -> dict:
    return _core.testing.accept_drafts(logits, drafts, first_pos, emitted, sampling_params(**knobs))


def sample(row, pos, generated, **knobs) -> int:
    return _core.testing.sample_token(row, pos, generated, sampling_params(**knobs))


def random_logits(n_rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 3.0, size=(n_rows, N_VOCAB)).astype(np.float32)


def one_by_one(logits: np.ndarray, drafts: list[int], first_pos: int, emitted: list[int], **knobs) -> list[int]:
    """What plain decoding picks at each position of the round, stopping where a
    draft differs: the reference acceptance must equal."""
    out: list[int] = []
    for i in range(len(drafts) + 1):
        row = np.ascontiguousarray(logits[i])
        y = sample(row, first_pos + i, emitted + out, **knobs)
        out.append(y)
        if i == len(drafts) or drafts[i] != y:
            break
    return out


# ---- greedy ------------------------------------------------------------------

@pytest.mark.parametrize("n_drafts", [0, 1, 4, 7])
def test_greedy_accepts_longest_prefix_equal_to_argmax(n_drafts):
    logits = random_logits(n_drafts + 1, seed=n_drafts)
    best = [int(t) for t in logits.argmax(axis=1)]
    for n_right in range(n_drafts + 1):
        # the first n_right drafts are the argmax, the next one (if any) is not
        drafts = best[:n_right] + [(t + 1) % N_VOCAB for t in best[n_right:n_drafts]]
        r = accept(logits, drafts, 100, [], **GREEDY)
        assert r["n_accepted"] == n_right
        # accepted drafts, then the correction (a rejection) or the bonus token (all accepted)
        assert r["tokens"] == best[: n_right + 1]
        assert r["tokens"] == one_by_one(logits, drafts, 100, [], **GREEDY)


def test_greedy_bonus_token_after_all_accepted():
    logits = np.zeros((3, N_VOCAB), np.float32)
    logits[0, 5] = logits[1, 6] = logits[2, 7] = 1.0
    assert accept(logits, [5, 6], 0, [], **GREEDY) == {"tokens": [5, 6, 7], "n_accepted": 2}
    # a rejection at the first draft emits the full model's choice there and nothing after
    assert accept(logits, [9, 6], 0, [], **GREEDY) == {"tokens": [5], "n_accepted": 0}
    assert accept(logits, [5, 9], 0, [], **GREEDY) == {"tokens": [5, 6], "n_accepted": 1}


def test_greedy_ties_take_the_first_argmax():
    logits = np.zeros((2, N_VOCAB), np.float32)
    logits[0, [3, 9]] = 2.0
    assert accept(logits, [9], 0, [], **GREEDY)["tokens"] == [3]


def test_rows_must_match_drafts():
    with pytest.raises(ValueError):
        accept(random_logits(2, 0), [1, 2], 0, [], **GREEDY)


# ---- seeded sampling ---------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeded_sampling_reproducible_and_equal_to_one_by_one(seed):
    logits = random_logits(6, seed=10 + seed)
    knobs = dict(SAMPLING, seed=seed)
    emitted = [1, 2, 3]
    plain = []  # the sampled choice at each position, one by one (drafts all right)
    for i in range(6):
        plain.append(sample(np.ascontiguousarray(logits[i]), 40 + i, emitted + plain, **knobs))
    for n_right in range(6):
        drafts = plain[:n_right] + [(t + 1) % N_VOCAB for t in plain[n_right:5]]
        r = accept(logits, drafts, 40, emitted, **knobs)
        assert r == accept(logits, drafts, 40, emitted, **knobs)  # reproducible
        assert r["n_accepted"] == n_right
        assert r["tokens"] == plain[: n_right + 1]
        assert r["tokens"] == one_by_one(logits, drafts, 40, emitted, **knobs)


def test_sampling_draws_from_each_positions_stream():
    # the same row sampled at different positions (or with different seeds)
    # draws from different streams: over a flat row the picks differ
    flat = np.zeros((1, N_VOCAB), np.float32)
    knobs = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
    by_pos = {accept(flat, [], pos, [], seed=7, **knobs)["tokens"][0] for pos in range(20)}
    by_seed = {accept(flat, [], 5, [], seed=s, **knobs)["tokens"][0] for s in range(20)}
    assert len(by_pos) > 1 and len(by_seed) > 1


# ---- penalties ---------------------------------------------------------------

def penalty_rows() -> np.ndarray:
    """Row 0 prefers A; row 1 prefers A by a margin a repeat penalty of 2
    reverses (A 3.0 -> 1.5 < B 2.0); row 2 prefers C."""
    A, B, C = 10, 11, 12
    logits = np.zeros((3, N_VOCAB), np.float32)
    logits[0, A] = 5.0
    logits[1, A], logits[1, B] = 3.0, 2.0
    logits[2, C] = 4.0
    return logits


def test_penalties_count_accepted_drafts():
    A, B, C = 10, 11, 12
    logits = penalty_rows()
    # without penalties row 1 picks A again: draft B is rejected
    assert accept(logits, [A, B], 0, [], **GREEDY) == {"tokens": [A, A], "n_accepted": 1}
    # with them, the accepted draft A counts as generated before position 1
    pen = dict(GREEDY, repeat_penalty=2.0, penalty_last_n=64)
    r = accept(logits, [A, B], 0, [], **pen)
    assert r == {"tokens": [A, B, C], "n_accepted": 2}
    assert r["tokens"] == one_by_one(logits, [A, B], 0, [], **pen)


def test_penalties_count_emitted_tokens_and_window():
    A, B = 10, 11
    logits = penalty_rows()
    pen = dict(GREEDY, repeat_penalty=2.0)
    # A generated before the round: row 0 (A 5.0 -> 2.5) still picks A, row 1 then B
    assert accept(logits, [A, A], 0, [A], **pen)["tokens"] == [A, B]
    # a window of one token: at row 1 only the accepted draft A is seen, still penalized
    assert accept(logits, [A, B], 0, [B, B, B], penalty_last_n=1, **pen)["n_accepted"] == 2
    # an empty window: penalties off, nothing penalizes A at row 1
    assert accept(logits, [A, B], 0, [], penalty_last_n=0, **pen)["tokens"] == [A, A]


@pytest.mark.parametrize("seed", [4, 5])
def test_penalized_sampling_equal_to_one_by_one(seed):
    logits = random_logits(5, seed=seed)
    knobs = dict(SAMPLING, seed=seed, repeat_penalty=1.3, frequency_penalty=0.4, presence_penalty=0.3,
                 penalty_last_n=8)
    emitted = [int(t) for t in logits[0].argsort()[-3:]]
    plain = []
    for i in range(5):
        plain.append(sample(np.ascontiguousarray(logits[i]), 7 + i, emitted + plain, **knobs))
    r = accept(logits, plain[:4], 7, emitted, **knobs)
    assert r == {"tokens": plain, "n_accepted": 4}
