"""Process-level behaviour of the extension: shared libraries and bad input.

Everything that could crash the interpreter runs in a subprocess, so that a
segfault or an abort fails the test (non-zero return code) instead of taking
pytest down with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import copy_tokenizer

MARK = "@@RESULT@@"  # the child's answer, on a line of its own (the editable rebuild may print too)


def run_child(code: str, *args: str, timeout: float = 300) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    assert len(lines) == 1, f"no result from the child\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    out = json.loads(lines[0][len(MARK):])
    out["stderr"] = proc.stderr
    return out


# --- (a) one libggml / libllama per process ------------------------------------------

LIB_PATTERNS = {
    "libggml-base": "libggml-base.so",
    "libggml": "libggml.so",
    "libggml-cpu": "libggml-cpu.so",
    "libllama": "libllama.so",
}

CHILD_LIBS = f"""
    import json, os, sys
    first = sys.argv[1]
    path = sys.argv[2]
    if first == "core":
        from specbound_cpp import _core
        import llama_cpp
    else:
        import llama_cpp
        from specbound_cpp import _core
    sess = _core.Session(path, 256, 64, 2, 2, 0, False)
    llm = llama_cpp.Llama(path, n_ctx=256, n_threads=2, n_threads_batch=2, verbose=False)
    # use both, so that every lazily loaded piece is in
    toks = sess.tokenize(b"Hello, world", True, False)
    params = _core.GenerateParams()
    params.max_tokens = 4
    ours = sess.generate(toks, params).tokens
    llm.eval(toks)
    mapped = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                mapped.add(parts[5].strip())
    libs = {{}}
    for p in mapped:
        base = os.path.basename(p)
        for key, prefix in {LIB_PATTERNS!r}.items():
            if base == prefix or base.startswith(prefix + "."):
                libs.setdefault(key, set()).add(os.path.realpath(p))
    lib_dir = os.path.realpath(os.path.join(os.path.dirname(llama_cpp.__file__), "lib"))
    print({MARK!r} + json.dumps({{
        "libs": {{k: sorted(v) for k, v in libs.items()}},
        "lib_dir": lib_dir,
        "core": os.path.realpath(_core.__file__),
        "n_generated": len(ours),
    }}))
"""


@pytest.mark.parametrize("first", ["core", "llama_cpp"])
def test_one_libggml_per_process(first, smollm2_path):
    out = run_child(CHILD_LIBS, first, smollm2_path)
    libs, lib_dir = out["libs"], out["lib_dir"]
    print(f"import {first} first: {json.dumps(libs, indent=1)}")
    assert out["n_generated"] == 4
    for key in LIB_PATTERNS:
        paths = libs.get(key, [])
        assert len(paths) == 1, f"{key}: expected exactly one mapped copy, got {paths}"
        assert os.path.dirname(paths[0]) == lib_dir, f"{key} is {paths[0]}, not the one under {lib_dir}"


# --- (b) bad input -----------------------------------------------------------------------

CHILD_OPEN = f"""
    import json, sys
    from specbound_cpp import _core
    try:
        _core.Session(sys.argv[1], 256, 64, 2, 2, 0, False)
        res = {{"raised": None, "message": ""}}
    except BaseException as e:
        res = {{"raised": type(e).__name__, "message": str(e),
                "mro": [c.__name__ for c in type(e).__mro__]}}
    print({MARK!r} + json.dumps(res))
"""


def write_unsupported_arch_gguf(path: str, smollm2_path: str, arch: str) -> None:
    """A small, well-formed GGUF whose general.architecture is `arch`: SmolLM2's
    tokenizer (so that llama.cpp can load the vocabulary when it knows the
    architecture), tiny hyper-parameters and one tiny tensor."""
    import gguf

    w = gguf.GGUFWriter(path, arch)
    copy_tokenizer(w, smollm2_path)
    w.add_context_length(2048)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_eps(1e-5)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tensor("token_embd.weight", np.zeros((4, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_bad_input(kind: str, tmp_path, smollm2_path: str) -> str:
    p = tmp_path / f"{kind}.gguf"
    if kind == "missing":
        return str(tmp_path / "does-not-exist.gguf")
    if kind == "directory":
        d = tmp_path / "a-directory.gguf"
        d.mkdir()
        return str(d)
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "random":
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 1 << 16, dtype=np.uint8).tobytes())
    elif kind == "wrong_magic":
        with open(smollm2_path, "rb") as f:
            head = f.read(1 << 20)
        p.write_bytes(b"GGML" + head[4:])
    elif kind in ("truncated_header", "truncated_data"):
        size = os.path.getsize(smollm2_path)
        n = 100 if kind == "truncated_header" else int(size * 0.6)
        with open(smollm2_path, "rb") as f:
            p.write_bytes(f.read(n))
    elif kind == "unsupported_arch":
        # gpt2: an architecture llama.cpp knows (the vocabulary loads), our engine does not
        write_unsupported_arch_gguf(str(p), smollm2_path, "gpt2")
    elif kind == "unknown_arch":
        # an architecture nobody knows: llama.cpp already refuses the vocabulary
        write_unsupported_arch_gguf(str(p), smollm2_path, "nosucharch")
    else:
        raise AssertionError(kind)
    return str(p)


# kind -> (accepted exception types, substrings the message must contain).
# What the engine raises today is printed by each test (run with -s).
BAD_INPUTS = {
    "missing": (("FileNotFoundError", "ValueError"), ["does-not-exist.gguf"]),
    "directory": (("ValueError",), ["a-directory.gguf"]),
    "empty": (("ValueError",), ["empty.gguf"]),
    "random": (("ValueError",), ["random.gguf"]),
    "wrong_magic": (("ValueError",), ["wrong_magic.gguf"]),
    "truncated_header": (("ValueError",), ["truncated_header.gguf"]),
    "truncated_data": (("ValueError",), ["truncated_data.gguf"]),
    "unsupported_arch": (("ValueError",), ["gpt2", "llama", "qwen2", "qwen3", "gemma3"]),
    "unknown_arch": (("ValueError",), ["unknown_arch.gguf"]),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_model_file_raises(kind, tmp_path, smollm2_path, record_property):
    path = make_bad_input(kind, tmp_path, smollm2_path)
    out = run_child(CHILD_OPEN, path)
    print(f"{kind}: {out['raised']}: {out['message']}")
    record_property("raised", f"{out['raised']}: {out['message']}")
    types, needles = BAD_INPUTS[kind]
    assert out["raised"] in types, f"{kind}: expected one of {types}, got {out['raised']}: {out['message']}"
    for s in needles:
        assert s in out["message"], f"{kind}: {s!r} not in the message {out['message']!r}"


CHILD_TOO_LONG = f"""
    import json, sys
    from specbound_cpp import _core
    path = sys.argv[1]
    n_ctx = 128
    sess = _core.Session(path, n_ctx, 64, 2, 2, 0, False)
    text = b"The quick brown fox jumps over the lazy dog. " * 40
    long_prompt = sess.tokenize(text, True, False)
    assert len(long_prompt) > n_ctx, len(long_prompt)
    prompt = sess.tokenize(b"Once upon a time, in a land far away,", True, False)
    def greedy(n):
        params = _core.GenerateParams()  # greedy (temperature 0) by default
        params.max_tokens = n
        return params
    gen = lambda s, p: list(s.generate(p, greedy(24)).tokens)
    before = gen(sess, prompt)
    res = {{}}
    try:
        sess.generate(long_prompt, greedy(8))
        res["raised"] = None
    except BaseException as e:
        res["raised"], res["message"] = type(e).__name__, str(e)
    res["after"] = gen(sess, prompt)
    res["before"] = before
    fresh = _core.Session(path, n_ctx, 64, 2, 2, 0, False)
    res["fresh"] = gen(fresh, prompt)
    res["warm"] = gen(fresh, prompt)  # the same request again: its cached prompt reused
    res["n_long"] = len(long_prompt)
    print({MARK!r} + json.dumps(res))
"""


def test_prompt_longer_than_context(smollm2_path):
    out = run_child(CHILD_TOO_LONG, smollm2_path)
    print(f"prompt of {out['n_long']} tokens, n_ctx 128: {out['raised']}: {out.get('message')}")
    assert out["raised"] == "ValueError", out
    assert str(out["n_long"]) in out["message"] and "128" in out["message"], out["message"]
    # the session is still usable and decodes exactly as one on which the
    # failed request never ran: a repeated request reuses the cached prompt and
    # evaluates its last token in another batch, which may change the text
    # (it does on an AVX2-only CPU), so "after" is a fresh session's second call
    assert len(out["fresh"]) == 24
    assert out["after"] == out["warm"]
    assert out["before"] == out["fresh"]
