"""Exit-check data: the model's own text, and what its exit heads say about it.

Calibration's steps 1-3 (see `calibrate`): the model's greedy continuations of
the calibration prompts, the exit head's candidate vocabulary, and the exit
checks of every deep layer over that text, for the plain exit head and
through exit translators fitted held out (`ExitChecks`). The fit (`spec_fit`)
replays SpecBound rounds over these; `tools/exit_decision_quality.py` reads
them too.
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from . import exit_fit
from .costs import exit_vocab_size
from .params import generate_params, sampling_params
from .profile_store import set_exit_maps

ALPHAS = [0.0, 0.5, 1.0]  # annealing strengths tried (T_l = 1 + alpha (1 - l/L))


def generate(s, prompt: list[int], n: int, spec: bool, sp=None):
    """One greedy generation on the session (SpecBound rounds with sp when spec):
    its GenerateResult."""
    return s.generate(prompt, generate_params(n, sampling_params(), specbound=spec, spec=sp))


def own_text(s, prompts: list[str], n_new: int, say) -> tuple[list, float]:
    """Step 1: the model's own greedy continuations [(prompt ids, generated ids)]
    and the plain decoding speed (tokens/s) they were made at."""
    seqs = []
    t0 = time.time()
    for i, text in enumerate(prompts):
        p = s.tokenize(text.encode(), True, False)
        s.reset()
        seqs.append((p, generate(s, p, n_new, False).tokens))
        say(f"generated {i + 1}/{len(prompts)}")
    return seqs, sum(len(g) for _, g in seqs) / (time.time() - t0)


def exit_vocabulary(s, seqs) -> list[int]:
    """Step 2: the exit head's candidates: what the model writes, topped up with
    the most common merges (lowest ids), sorted."""
    produced = sorted({t for p, g in seqs for t in p + g})
    return sorted(list(dict.fromkeys(produced + list(range(s.n_vocab))))[: exit_vocab_size(s)])


def exit_logits(s, seqs, layers: list[int], which=None) -> dict[int, np.ndarray]:
    """Teacher-forced exit-head logits [layer index, position, candidate] at
    each of layers over the model's own text (the positions that predict its
    generated tokens), per sequence index (all, or `which`)."""
    out = {}
    for i in which if which is not None else range(len(seqs)):
        p, g = seqs[i]
        s.reset()
        out[i] = s.exit_logits(p + g, 0, layers)[:, len(p) - 1 : len(p) + len(g) - 1]
    return out


# Text the exit translators are fitted on besides the model's own: any text
# gives pairs (h_l, h_L), and a map fitted on ~1,000 positions of the model's
# own text alone lost agreement at 18-20 of 24 layers held out (0.5B); with
# ~6,000 positions of standard-library source it gained 0.05-0.14 at 17-19.
FIT_TEXT_MODULES = ("textwrap", "json.decoder", "string", "difflib")
FIT_CHUNK = 400  # tokens per teacher-forced pass
FIT_TEXT_TOKENS = 4000


def fit_text(s, n_tokens: int) -> list[list[int]]:
    """Up to n_tokens of Python's own source (present wherever Python is), in chunks."""
    import importlib
    import inspect

    per_module = []
    for name in FIT_TEXT_MODULES:
        toks = s.tokenize(inspect.getsource(importlib.import_module(name)).encode(), True, False)
        per_module.append([toks[i : i + FIT_CHUNK] for i in range(0, len(toks) - FIT_CHUNK + 1, FIT_CHUNK)])
    chunks = [c for group in itertools.zip_longest(*per_module) for c in group if c]  # modules in turn
    return chunks[: max(1, n_tokens // FIT_CHUNK)]


def layer_states(s, texts: list[list[int]], layers: list[int]) -> list[np.ndarray]:
    """Teacher-forced hidden states [layer index, position, n_embd] at each of
    layers and at the top (last index), per text."""
    states = []
    for t in texts:
        s.reset()
        states.append(s.hidden_states(t, 0, layers + [s.n_layer]))
    return states


def fit_maps(states, which, layers: list[int], extra) -> dict[int, tuple]:
    """Exit translators per layer, fitted on the sequences `which` and the extra texts' states."""
    use = [states[i] for i in which] + list(extra)
    top = np.concatenate([h[-1, exit_fit.SKIP_POSITIONS :] for h in use])
    maps = {}
    for li, l in enumerate(layers):
        x = np.concatenate([h[li, exit_fit.SKIP_POSITIONS :] for h in use])
        maps[l] = exit_fit.fit_exit_map(x, top, rank=min(exit_fit.MAP_RANK, x.shape[1]))
    return maps


def mapped_exit_logits(s, seqs, layers: list[int], states, extra) -> dict[int, np.ndarray]:
    """Exit logits through exit translators, held out: maps fitted on half of
    the sequences read the other half, and the other way round."""
    folds = [list(range(0, len(seqs), 2)), list(range(1, len(seqs), 2))]
    out = {}
    for fit_on, read in ((folds[0], folds[1]), (folds[1], folds[0])):
        set_exit_maps(s, fit_maps(states, fit_on, layers, extra))
        out.update(exit_logits(s, seqs, layers, read))
    set_exit_maps(s, None)
    return out


class ExitChecks:
    """The exit checks of one drafting variant (exit head with or without
    translators) over the model's own text, sequences side by side: draft_ok
    [layer index, position] (the head's top-1 is the token the model wrote),
    annealed confidences per alpha, and what the learned decision reads."""

    def __init__(self, z: dict[int, np.ndarray], seqs, cand: list[int], layers: list[int], n_layer: int):
        cand_arr = np.array(cand)
        order = [i for i in sorted(z) if len(seqs[i][1]) >= 2]
        self.layers, self.n_layer = layers, n_layer
        self.seq_of = np.concatenate([np.full(z[i].shape[1], i) for i in order])
        self.arg = np.concatenate([z[i].argmax(-1) for i in order], axis=1)
        self.ok = cand_arr[self.arg] == np.concatenate([np.array(seqs[i][1]) for i in order])[None, :]
        self.conf = {}
        for a in ALPHAS:
            T = (1.0 + a * (1.0 - np.array(layers) / n_layer))[:, None, None]
            self.conf[a] = np.concatenate(
                [1.0 / np.exp((z[i] - z[i].max(-1, keepdims=True)) / T).sum(-1) for i in order], axis=1)
        # features at T = 1 (learned decisions use alpha 0), without the previous-check term
        self.feats = np.stack([np.concatenate([exit_fit.exit_features(z[i][li], 1.0, None, l / n_layer) for i in order])
                             for li, l in enumerate(layers)])  # fmt: skip

    def features(self, exit_set: list[int]) -> np.ndarray:
        """[layer index, position, feature] for drafting with exit_set: the
        agreement term compares with the previous layer of the set."""
        f = self.feats.copy()
        for k in range(1, len(exit_set)):
            li, prev = self.layers.index(exit_set[k]), self.layers.index(exit_set[k - 1])
            f[li, :, 3] = self.arg[li] == self.arg[prev]
        return f

    def learned(self, exit_set: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The learned decision for exit_set: held-out predicted probabilities
        [layer index, position] (a fit on half of the sequences predicts the
        other half), and the weights fitted on all."""
        f = self.features(exit_set)
        idx = [self.layers.index(l) for l in exit_set]
        prob = np.zeros(self.ok.shape)
        odd = self.seq_of % 2 == 1
        for fit_on in (odd, ~odd):
            if not fit_on.any() or fit_on.all():
                continue
            w = exit_fit.fit_logistic(f[idx][:, fit_on].reshape(-1, exit_fit.N_FEATURES), self.ok[idx][:, fit_on].ravel())
            prob[:, ~fit_on] = exit_fit.exit_probability(w, f[:, ~fit_on])
        w = exit_fit.fit_logistic(f[idx].reshape(-1, exit_fit.N_FEATURES), self.ok[idx].ravel())
        return prob, w


def agreement(checks: ExitChecks) -> dict:
    return {str(l): round(float(checks.ok[i].mean()), 3) for i, l in enumerate(checks.layers)}


def decision_quality(checks: ExitChecks, cfg: dict) -> dict:
    """Held-out precision and recall per exit layer of cfg's exit decision at
    its tau: of the tokens that would exit there, the share the head gets
    right, and of those it gets right, the share that would exit."""
    if "exit_decision" in cfg:
        score = checks.learned(cfg["exit_layers"])[0]
    else:
        score = checks.conf[cfg["alpha"]]
    out = {}
    for l in cfg["exit_layers"]:
        li = checks.layers.index(l)
        exits, ok = score[li] >= cfg["tau"], checks.ok[li]
        out[str(l)] = {"precision": round(float(ok[exits].mean()) if exits.any() else 0.0, 3),
                       "recall": round(float(exits[ok].mean()) if ok.any() else 0.0, 3)}  # fmt: skip
    return out


def checks_of_both_heads(s, seqs, cand: list[int], layers: list[int], n_fit_text: int, say) -> tuple[dict, dict]:
    """Step 3: the exit checks of both exit heads over the model's own text
    (plain, and through exit translators fitted held out), and the
    translators fitted on all of it."""
    states = layer_states(s, [p + g for p, g in seqs], layers)
    extra = layer_states(s, fit_text(s, n_fit_text), layers)
    checks = {
        False: ExitChecks(exit_logits(s, seqs, layers), seqs, cand, layers, s.n_layer),
        True: ExitChecks(mapped_exit_logits(s, seqs, layers, states, extra), seqs, cand, layers, s.n_layer),
    }
    for maps, c in checks.items():
        say(f"exit agreement by layer{' with translators (held out)' if maps else ''}: "
            + ", ".join(f"{l}:{a:.2f}" for l, a in agreement(c).items()))  # fmt: skip
    return checks, fit_maps(states, range(len(seqs)), layers, extra)
