"""The online gate (cpp/decode/gate.h): which kind of round runs next, from the
milliseconds per emitted token of each kind measured so far. Driven here with
given timings, so the decisions are deterministic."""

from __future__ import annotations

from specbound_cpp import _core


def plain(g, ms=10.0):
    assert not g.want_spec()
    g.record(False, ms, 1)


def spec(g, ms, n):
    assert g.want_spec()
    g.record(True, ms, n)


def test_prices_plain_decoding_first():
    g = _core.SpecGate()
    plain(g)
    plain(g)
    assert g.want_spec() and g.plain_ms_per_token == 10.0


def test_keeps_speculating_while_it_pays():
    g = _core.SpecGate()
    plain(g), plain(g)
    for _ in range(20):
        spec(g, ms=25.0, n=4)  # 6.25 ms per token against 10
    assert g.stats["gate_switch_offs"] == 0 and g.stats["gate_spec_rounds"] == 20


def test_pauses_when_behind_and_backs_off():
    g = _core.SpecGate()
    plain(g), plain(g)
    spec(g, ms=30.0, n=1)  # 30 ms per token: behind
    assert g.stats["gate_switch_offs"] == 1
    for _ in range(8):  # SpecGate::kMinBackoff
        plain(g)
    spec(g, ms=30.0, n=1)  # the probe loses: twice as long a pause
    assert g.stats["gate_probes"] == 1 and g.stats["gate_switch_offs"] == 2
    for _ in range(16):
        plain(g)
    spec(g, ms=12.0, n=3)  # the probe wins: speculation resumes
    assert g.stats["gate_probes"] == 2 and g.want_spec()
    spec(g, ms=12.0, n=3)
    assert g.stats["gate_switch_offs"] == 2


def test_probe_judged_on_its_own_round():
    g = _core.SpecGate()
    plain(g), plain(g)
    spec(g, ms=100.0, n=1)  # a very slow round pauses speculation
    for _ in range(8):
        plain(g)
    spec(g, ms=8.0, n=1)  # the probe alone is ahead, even though the average remembers 100 ms
    assert g.spec_ms_per_token == 8.0 and g.want_spec()


def test_disabled_gate_always_speculates():
    g = _core.SpecGate(enabled=False)
    for _ in range(5):
        spec(g, ms=50.0, n=1)
    assert g.stats["gate_switch_offs"] == 0
