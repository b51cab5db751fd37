"""The benchmark's llama-server peers (tools/bench/llama_server.py).

Without the binary: the command line per system, the request, the response
parsing, and the process handling against tests/fake_llama_server.py (start on a
free port, a request, a clean stop, a failed start). With the binary that
`tools/setup.sh --bench` builds (skipped otherwise: `--test` alone does not build
it): one speculative system on smollm2-135m for two prompts."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "tools" / "bench"
FAKE = Path(__file__).resolve().parent / "fake_llama_server.py"


def _load():
    """tools/bench/llama_server.py under its own name (it is not a package module)."""
    spec = importlib.util.spec_from_file_location("bench_llama_server", BENCH / "llama_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ls = _load()
CFG = {"path": "/models/m.gguf", "threads": 2, "n_ctx": 2048, "flash_attn": False}


def test_command_line_per_system():
    for system, spec in ls.SERVER_SYSTEMS.items():
        argv = ls.server_command("/bin/llama-server", {**CFG, "system": system}, 8123)
        assert argv[0] == "/bin/llama-server"
        opts = dict(zip(argv[1::2], argv[2::2]))  # every option before the system's own takes a value
        assert opts["--model"] == "/models/m.gguf" and opts["--host"] == "127.0.0.1" and opts["--port"] == "8123"
        assert opts["--threads"] == opts["--threads-batch"] == "2" and opts["--ctx-size"] == "2048"
        assert opts["--parallel"] == "1" and opts["--flash-attn"] == "off"
        assert argv[len(argv) - len(spec):] == spec
    assert ls.SERVER_SYSTEMS["llama_server"] == []
    assert ls.SERVER_SYSTEMS["llama_server_ngram_simple"] == ["--spec-type", "ngram-simple"]
    assert ls.SERVER_SYSTEMS["llama_server_ngram_map_k"] == ["--spec-type", "ngram-map-k"]
    assert ls.SERVER_SYSTEMS["llama_server_ngram_mod"] == ["--spec-default"]
    fa = ls.server_command("x", {**CFG, "flash_attn": True, "system": "llama_server"}, 1)
    assert fa[fa.index("--flash-attn") + 1] == "on"


def test_request_is_greedy_on_token_ids_without_cache():
    body = ls.request_body([1, 2, 3], 64)
    assert body["prompt"] == [1, 2, 3] and body["n_predict"] == 64
    assert body["temperature"] == 0.0 and body["top_k"] == 1
    assert body["cache_prompt"] is False and body["return_tokens"] is True and body["stream"] is False


def _response(tokens, stop_type, **timings):
    return {"tokens": tokens, "stop_type": stop_type, "tokens_evaluated": 7,
            "timings": {"prompt_n": 7, "prompt_ms": 3.0, "predicted_n": len(tokens), "predicted_ms": 250.0,
                        **timings}}  # fmt: skip


def test_parse_end_of_generation_and_drafts():
    rec = ls.parse_completion(_response([5, 6, 7, 8, 2], "eos", draft_n=5, draft_n_accepted=2), 30, True)
    assert rec["tokens"] == [5, 6, 7, 8] and rec["eog"] is True  # the end-of-generation token left out
    assert rec["decode_s"] == 0.25
    assert rec["emitted"] == 4 and rec["rounds"] == 2  # 4 tokens after the first, 2 of them accepted drafts
    assert rec["draft_tokens"] == 5 and rec["accepted_tokens"] == 2
    assert rec["layer_evals"] == 30 * (2 + 5)
    assert rec["server_timings"]["draft_n"] == 5 and rec["server_prompt_tokens"] == 7


def test_parse_limit_plain_and_no_drafts():
    plain = ls.parse_completion(_response([5, 6, 7], "limit"), 30, False)
    assert plain["tokens"] == [5, 6, 7] and plain["eog"] is False
    assert plain["rounds"] == plain["emitted"] == 2 and plain["layer_evals"] == 60
    assert "draft_tokens" not in plain
    # the server leaves draft_n out when it drafted nothing: a speculative system records 0
    spec = ls.parse_completion(_response([5, 6, 7], "limit"), 30, True)
    assert spec["draft_tokens"] == spec["accepted_tokens"] == 0 and spec["rounds"] == 2


@pytest.fixture
def fake_binary(tmp_path, monkeypatch):
    exe = tmp_path / "llama-server"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    exe.chmod(0o755)
    monkeypatch.setenv("SPECBOUND_LLAMA_SERVER", str(exe))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the server's log goes
    return exe


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_worker_against_a_fake_server(fake_binary):
    assert ls.server_binary() == fake_binary
    w = ls.LlamaServerWorker({**CFG, "system": "llama_server_ngram_mod"}, n_layer=30)
    pid = w.proc.pid
    try:
        assert w.info["llama_server_version"] == "version: 1 (fake)"
        assert w.info["llama_server_spec"] == ["--spec-default"] and "--port" not in w.info["llama_server_args"]
        rec = w.run([10, 11, 12, 13, 14, 15, 16], 4)
        assert rec["tokens"] == [17, 18, 19, 20] and rec["eog"] is False and rec["e2e_s"] > 0
        assert rec["draft_tokens"] == 6 and rec["accepted_tokens"] == 4
    finally:
        rss_kb = w.close()
    assert rss_kb > 0 and w.proc.returncode is not None and _gone(pid)
    assert not list(fake_binary.parent.glob("llama-server-*.log"))  # close() removes the log


def test_failed_start_says_why_and_keeps_the_log(fake_binary, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_LLAMA_SERVER_FAIL", "1")
    with pytest.raises(RuntimeError, match="failed to load model") as e:
        ls.LlamaServerWorker({**CFG, "system": "llama_server"}, n_layer=30)
    (log,) = tmp_path.glob("llama-server-*.log")
    assert str(log) in str(e.value)


def test_bench_refuses_server_systems_without_the_binary(tmp_path):
    env = {**os.environ, "SPECBOUND_LLAMA_SERVER": str(tmp_path / "absent")}
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); import run; run.parse_args(['--systems', 'llama_server'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and "tools/setup.sh --bench" in proc.stderr
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); import run; print(run.parse_args([]).systems)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "llama_server" not in proc.stdout  # optional: not in the default run


@pytest.mark.skipif(ls.server_binary() is None, reason=ls.missing_binary_message())
def test_llama_server_ngram_mod_on_smollm2():
    import llama_cpp

    from specbound_cpp.models import model_path

    path = model_path("smollm2-135m")
    vocab = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    # the second prompt repeats a passage, so that n-gram drafts have something to find
    passage = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\n"
    N = 128  # ngram-mod (--spec-default) drafts 48 to 64 tokens, and only where that many are left to make
    prompts = [vocab.tokenize(t.encode(), add_bos=True) for t in ("The capital of France is", passage * 4)]
    w = ls.LlamaServerWorker({**CFG, "path": path, "system": "llama_server_ngram_mod"}, n_layer=30)
    try:
        recs = [w.run(p, N) for p in prompts]
    finally:
        w.close()
    assert w.proc.returncode is not None
    for rec, p in zip(recs, prompts):
        assert 0 < len(rec["tokens"]) <= N and (rec["eog"] or len(rec["tokens"]) == N)
        assert rec["server_prompt_tokens"] == len(p)
        assert rec["e2e_s"] > rec["decode_s"] > 0
        assert rec["draft_tokens"] >= rec["accepted_tokens"] >= 0
        assert rec["rounds"] == rec["emitted"] - rec["accepted_tokens"]
    assert sum(r["draft_tokens"] for r in recs) > 0  # the speculation is on: smollm2 repeats itself here
