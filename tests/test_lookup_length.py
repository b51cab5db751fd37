"""The drafter's choice of how many n-gram lookup drafts a round makes
(speculation/draft.cpp, best_lookup_length): the k that maximises expected
tokens per unit of time, (1 + p + ... + p^k) / cost(k + 1). No model needed."""

from __future__ import annotations

import pytest

from specbound_cpp import _core


def linear(slope, n=17):
    return [1.0 + slope * w for w in range(n)]  # widths 1..n


def rate(p, k, cost):
    return sum(p**i for i in range(k + 1)) / cost[k]


@pytest.mark.parametrize("p", [0.0, 0.3, 0.6, 0.8, 0.9, 0.97, 1.0])
@pytest.mark.parametrize("slope", [0.25, 0.45, 0.9])
def test_choice_is_the_best_rate(p, slope):
    cost = linear(slope)
    k = _core.testing.best_lookup_length(p, 16, cost)
    assert 1 <= k <= 16
    assert rate(p, k, cost) == pytest.approx(max(rate(p, j, cost) for j in range(1, 17)))


def test_copying_drafts_long_and_guessing_drafts_short():
    steep = linear(0.45)  # Qwen2.5-Coder-1.5B's batch factors on 2 cores: ~0.45 per row
    assert _core.testing.best_lookup_length(1.0, 16, steep) == 16  # text being copied: the longest draft
    assert _core.testing.best_lookup_length(0.5, 16, steep) == 1
    assert _core.testing.best_lookup_length(0.0, 16, steep) == 1  # never below one draft (the gate pauses lookup)
    cheap = linear(0.25)
    assert _core.testing.best_lookup_length(0.8, 16, cheap) > _core.testing.best_lookup_length(0.8, 16, steep)
    # a measured cost table need not be linear: a costly width is skipped
    bumpy = linear(0.2)
    bumpy[2] = 10.0  # width 3 (2 drafts)
    assert _core.testing.best_lookup_length(0.9, 3, bumpy) in (1, 3)


def test_bounds_checked():
    with pytest.raises(ValueError):
        _core.testing.best_lookup_length(0.5, 4, [1.0, 1.2])
    with pytest.raises(ValueError):
        _core.testing.best_lookup_length(0.5, 0, [1.0])


@pytest.mark.parametrize("p", [0.3, 0.8, 0.95])
@pytest.mark.parametrize("per_draft", [0.0, 0.5, 0.93])
def test_early_exit_length_counts_the_drafting_cost(p, per_draft):
    """Early-exit drafts cost their shallow layers to make (per_draft, a share
    of a single step): the choice maximises (1 + ... + p^k) / (k c + cost(k + 1))."""
    cost = [0.2 + 0.3 * w for w in range(1, 10)]  # an exit round's deep pass: its top layers only
    k = _core.testing.best_lookup_length(p, 8, cost, per_draft)
    best = max(range(1, 9), key=lambda j: sum(p**i for i in range(j + 1)) / (j * per_draft + cost[j]))
    assert k == best
    if per_draft > 0:  # dearer drafts never make the round longer
        assert k <= _core.testing.best_lookup_length(p, 8, cost, 0.0)


def chain_rate(accept, k, cost):
    gain, reach = 1.0, 1.0
    for p in accept[:k]:
        reach *= p
        gain += reach
    return gain / cost[k]


@pytest.mark.parametrize("seed", range(6))
def test_chain_choice_is_the_best_rate(seed):
    """Lookup drafts of one chain have their own acceptance each (by the length
    of the key that proposed them): the k that maximises the expected tokens
    per unit of time over the chain's prefixes."""
    import random

    rng = random.Random(seed)
    accept = [rng.choice([0.45, 0.55, 0.75, 0.9, 0.95, 0.99]) for _ in range(64)]
    cost = linear(rng.choice([0.1, 0.2, 0.45]), 65)
    k = _core.testing.best_chain_length(accept, cost)
    assert chain_rate(accept, k, cost) == pytest.approx(max(chain_rate(accept, j, cost) for j in range(1, 65)))


def test_copied_span_is_drafted_whole_where_wide_passes_are_cheap():
    copied = [0.99] * 64  # 24-token keys all along
    assert _core.testing.best_chain_length(copied, linear(0.02, 65)) == 64
    assert 16 < _core.testing.best_chain_length(copied, linear(0.15, 65)) < 64
    assert _core.testing.best_chain_length(copied, linear(0.45, 65)) <= 16  # dear rows: shorter
    # a guess in the middle of the chain (a 2-token key) ends it there
    guess = [0.97] * 10 + [0.1] + [0.97] * 53
    assert _core.testing.best_chain_length(guess, linear(0.15, 65)) == 10
    assert _core.testing.best_chain_length([], [1.0]) == 1


def test_pass_cost_prior_and_what_the_request_measured():
    factors = [1.0, 1.1, 1.3, 1.6]  # widths 1..4, then the line through the last two: +0.3 per row
    assert _core.testing.pass_cost_relative({}, 1, factors) == 1.0
    assert _core.testing.pass_cost_relative({}, 3, factors) == pytest.approx(1.3)
    assert _core.testing.pass_cost_relative({}, 10, factors) == pytest.approx(1.6 + 0.3 * 6)
    assert _core.testing.pass_cost_relative({}, 9) == pytest.approx(1.0 + 0.5 * 8)  # no factors: kPriorSlope
    # a width measured in this request is its own price (over the single step)
    assert _core.testing.pass_cost_relative({1: 10.0, 4: 20.0}, 4, factors) == pytest.approx(2.0)
    # others: the prior's excess scaled to fit what was measured (here twice the prior)
    assert _core.testing.pass_cost_relative({1: 10.0, 4: 22.0}, 3, factors) == pytest.approx(1.0 + 2 * 0.3)
    assert _core.testing.pass_cost_relative({1: 10.0, 4: 22.0}, 64, factors) == pytest.approx(1.0 + 2 * (0.6 + 0.3 * 60))
    # without factors, the line through the measured widths (what lookup used before)
    assert _core.testing.pass_cost_relative({1: 10.0, 5: 18.0}, 9) == pytest.approx(1.0 + 0.2 * 8)
    # a row is never free, whatever a noisy profile says, so what a request measures can scale it
    flat = [1.0] * 16
    assert _core.testing.pass_cost_relative({}, 11, flat) == pytest.approx(1.0 + 0.02 * 10)
    assert _core.testing.pass_cost_relative({1: 10.0, 3: 20.0}, 11, flat) == pytest.approx(1.0 + 0.5 * 10)


def test_profile_batch_factors_become_the_engines_table():
    from specbound_cpp.specbound_setup import batch_factor_table

    t = batch_factor_table({"1": 1.0, "2": 1.1, "4": 1.7, "8": 1.6, "16": 3.2})
    assert len(t) == 16 and t[0] == 1.0 and t[1] == pytest.approx(1.1) and t[2] == pytest.approx(1.4)
    assert t[7] == pytest.approx(1.7)  # a dip is noise: a wider pass never costs less
    assert all(b >= a for a, b in zip(t, t[1:])) and t[15] == pytest.approx(3.2)
    # a profile measured on a busy machine: no width is cheaper than one row
    assert batch_factor_table({"1": 1.0, "2": 0.15, "4": 0.04, "8": 1.5}) == pytest.approx([1.0] * 6 + [1.135, 1.5])
