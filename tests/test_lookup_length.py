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
    k = _core.best_lookup_length(p, 16, cost)
    assert 1 <= k <= 16
    assert rate(p, k, cost) == pytest.approx(max(rate(p, j, cost) for j in range(1, 17)))


def test_copying_drafts_long_and_guessing_drafts_short():
    steep = linear(0.45)  # Qwen2.5-Coder-1.5B's batch factors on 2 cores: ~0.45 per row
    assert _core.best_lookup_length(1.0, 16, steep) == 16  # text being copied: the longest draft
    assert _core.best_lookup_length(0.5, 16, steep) == 1
    assert _core.best_lookup_length(0.0, 16, steep) == 1  # never below one draft (the gate pauses lookup)
    cheap = linear(0.25)
    assert _core.best_lookup_length(0.8, 16, cheap) > _core.best_lookup_length(0.8, 16, steep)
    # a measured cost table need not be linear: a costly width is skipped
    bumpy = linear(0.2)
    bumpy[2] = 10.0  # width 3 (2 drafts)
    assert _core.best_lookup_length(0.9, 3, bumpy) in (1, 3)


def test_bounds_checked():
    with pytest.raises(ValueError):
        _core.best_lookup_length(0.5, 4, [1.0, 1.2])
    with pytest.raises(ValueError):
        _core.best_lookup_length(0.5, 0, [1.0])


@pytest.mark.parametrize("p", [0.3, 0.8, 0.95])
@pytest.mark.parametrize("per_draft", [0.0, 0.5, 0.93])
def test_early_exit_length_counts_the_drafting_cost(p, per_draft):
    """Early-exit drafts cost their shallow layers to make (per_draft, a share
    of a single step): the choice maximises (1 + ... + p^k) / (k c + cost(k + 1))."""
    cost = [0.2 + 0.3 * w for w in range(1, 10)]  # an exit round's deep pass: its top layers only
    k = _core.best_lookup_length(p, 8, cost, per_draft)
    best = max(range(1, 9), key=lambda j: sum(p**i for i in range(j + 1)) / (j * per_draft + cost[j]))
    assert k == best
    if per_draft > 0:  # dearer drafts never make the round longer
        assert k <= _core.best_lookup_length(p, 8, cost, 0.0)
