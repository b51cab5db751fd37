"""The online gate (cpp/speculation/gate.h): which kind of round runs next, from the
milliseconds per emitted token of each kind measured so far. Driven here with
given timings, so the decisions are deterministic."""

from __future__ import annotations

import pytest

from specbound_cpp import _core


PLAIN, LOOKUP, EXIT = _core.testing.RoundKind.plain, _core.testing.RoundKind.lookup, _core.testing.RoundKind.early_exit


def plain(g, ms=10.0):
    # the one-source cases below speculate by early exit only
    assert not g.allows(EXIT)
    g.record(PLAIN, ms, 1)


def spec(g, ms, n, kind=EXIT):
    assert g.allows(kind)
    g.record(kind, ms, n)


def test_prices_plain_decoding_first():
    g = _core.testing.SpecGate()
    plain(g)
    plain(g)
    assert g.want_spec() and g.plain_ms_per_token == 10.0


def test_keeps_speculating_while_it_pays():
    g = _core.testing.SpecGate()
    plain(g), plain(g)
    for _ in range(20):
        spec(g, ms=25.0, n=4)  # 6.25 ms per token against 10
    assert g.stats["gate_switch_offs"] == 0 and g.stats["gate_spec_rounds"] == 20


JUDGE = _core.testing.SpecGate.kJudgeRounds  # rounds of a source before a verdict


def test_pauses_when_behind_and_backs_off():
    g = _core.testing.SpecGate()
    plain(g), plain(g)
    for _ in range(JUDGE - 1):  # no verdict on fewer rounds
        spec(g, ms=30.0, n=1)
    assert g.stats["gate_switch_offs"] == 0
    spec(g, ms=30.0, n=1)  # 30 ms per token: behind
    assert g.stats["gate_switch_offs"] == 1 and not g.allows(EXIT)
    for _ in range(8):  # SpecGate::kMinBackoff
        plain(g)
    for _ in range(JUDGE):
        spec(g, ms=30.0, n=1)  # the probe loses: twice as long a pause
    assert g.stats["gate_probes"] == 1 and g.stats["gate_switch_offs"] == 2
    for _ in range(16):
        plain(g)
    for _ in range(JUDGE):
        spec(g, ms=12.0, n=3)  # the probe wins: speculation resumes
    assert g.stats["gate_probes"] == 2 and g.allows(EXIT)
    spec(g, ms=12.0, n=3)
    assert g.stats["gate_switch_offs"] == 2


def test_probe_priced_on_its_own_rounds():
    g = _core.testing.SpecGate()
    plain(g), plain(g)
    for _ in range(JUDGE):
        spec(g, ms=100.0, n=1)  # very slow rounds pause speculation
    for _ in range(8):
        plain(g)
    for _ in range(JUDGE):
        spec(g, ms=8.0, n=1)  # the probe alone is ahead, though the old price remembers 100 ms
    assert g.spec_ms_per_token == pytest.approx(8.0) and g.allows(EXIT)


def test_price_is_a_ratio_of_sums():
    """Rounds of 2, 1 and 2 tokens in 18, 12 and 18 ms: 48 ms for 5 tokens is
    ahead of plain decoding's 10 ms by more than the margin, though the mean of
    the per-round ratios (9, 12, 9 ms) is not."""
    g = _core.testing.SpecGate(smoothing=0.0)
    plain(g), plain(g)
    for ms, n in ((18.0, 2), (12.0, 1), (18.0, 2)):
        spec(g, ms=ms, n=n)
    assert g.spec_ms_per_token == pytest.approx(9.6)
    assert g.stats["gate_switch_offs"] == 0 and g.allows(EXIT)


def test_sources_are_gated_apart():
    # lookup rounds lose while early-exit rounds pay: only lookup pauses
    g = _core.testing.SpecGate()
    plain(g), plain(g)
    for _ in range(JUDGE):
        spec(g, ms=30.0, n=1, kind=LOOKUP)
    assert not g.allows(LOOKUP) and g.allows(EXIT) and g.want_spec()
    for _ in range(8):  # the lookup pause counts rounds of the other kind too
        spec(g, ms=12.0, n=3, kind=EXIT)
    assert g.allows(LOOKUP)
    for _ in range(JUDGE):
        spec(g, ms=8.0, n=2, kind=LOOKUP)  # the probe wins
    st = g.stats
    assert st["gate_probes"] == 1 and st["gate_switch_offs"] == 1 and g.allows(LOOKUP)
    assert st["gate_lookup_rounds"] == 2 * JUDGE and st["gate_early_exit_rounds"] == 8
    assert g.ms_per_token(LOOKUP) == pytest.approx(4.0) and g.ms_per_token(EXIT) == pytest.approx(4.0)


def test_margin_pauses_a_source_that_barely_wins():
    g = _core.testing.SpecGate(margin=0.05)
    plain(g), plain(g)
    for _ in range(JUDGE):
        spec(g, ms=9.7, n=1)  # 3% ahead of plain decoding, inside the 5% margin
    assert not g.allows(EXIT) and g.stats["gate_switch_offs"] == 1
    g = _core.testing.SpecGate(margin=0.0)
    plain(g), plain(g)
    for _ in range(JUDGE):
        spec(g, ms=9.7, n=1)
    assert g.allows(EXIT)


def test_disabled_gate_always_speculates():
    g = _core.testing.SpecGate(enabled=False)
    for _ in range(5):
        spec(g, ms=50.0, n=1)
    assert g.stats["gate_switch_offs"] == 0


# ---- the gate inside real generations: output stays plain decoding's

from conftest import spec_then_plain  # noqa: E402
from test_specbound import aggressive  # noqa: E402

GATE_CASES = {
    "greedy": dict(temperature=0.0),
    "seeded": dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=1234),
    "penalties": dict(temperature=0.0, repeat_penalty=1.3, frequency_penalty=0.2, presence_penalty=0.2),
}


@pytest.fixture(scope="module")
def gated_llm(smollm2_path):
    from specbound_cpp import Llama

    llm = Llama(smollm2_path, n_ctx=512, n_threads=2, verbose=False, specbound=True, spec_gate=True, **aggressive(30))
    yield llm


@pytest.mark.parametrize("case", sorted(GATE_CASES))
def test_gated_generation_equals_plain(gated_llm, case):
    prompt = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    kw = dict(max_tokens=48, **GATE_CASES[case])
    spec, st, plain = spec_then_plain(gated_llm, prompt, **kw)
    assert spec == plain
    # every token after the prompt pass came from a round the gate recorded: a
    # speculative round by its draft source, or a plain one (a round through
    # SpecBound that drafted nothing and checked no exit counts as plain)
    assert st["gate_lookup_rounds"] + st["gate_early_exit_rounds"] == st["gate_spec_rounds"], st
    undrafted = st["rounds"] - st["gate_spec_rounds"]  # "rounds": rounds through SpecBound
    assert undrafted >= 0, st
    if st["finish_reason"] == "length":
        # the engine may emit up to 3 tokens past max_tokens (room for a character
        # split over tokens, as llama-cpp-python allows), which the text then drops
        engine_tokens = st["gate_plain_rounds"] - undrafted + st["emitted_tokens"] + 1
        assert 0 <= engine_tokens - st["completion_tokens"] <= 3, st
    assert st["gate_plain_rounds"] >= 2  # plain decoding is priced first
    assert st["gate_spec_rounds"] >= 1 and st["draft_tokens"] > 0, st
