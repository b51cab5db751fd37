"""ggml's RPC backend over loopback: two workers (python -m
specbound_cpp.rpc_server) in subprocesses, a registry model split across them.

Plain decoding over the workers must give our local plain decoding's tokens;
SpecBound over them must give plain decoding's tokens where the run-time
invariance check lets it run (and specbound=True must raise where it does
not); a worker that is unreachable at load, dies during a generation, answers
garbage or stops answering must raise RpcError (a ConnectionError), never abort
or hang, and the Llama must work again once the worker is back. Each fault runs
in a subprocess of its own (tests/rpc_fault_worker.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from conftest import N_THREADS

from specbound_cpp.rpc_server import free_loopback_port as free_port, start_local_worker

FAULTS = os.path.join(os.path.dirname(__file__), "rpc_fault_worker.py")
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
ARGS = dict(n_ctx=512, n_threads=N_THREADS, n_threads_batch=N_THREADS, verbose=False)






@pytest.fixture
def workers():
    """Two workers on free loopback ports: (endpoints "h:p,h:p", processes)."""
    procs, ends = [], []
    try:
        for _ in range(2):
            port = free_port()
            procs.append(start_local_worker(port, stderr=subprocess.PIPE))
            ends.append(f"127.0.0.1:{port}")
        yield ",".join(ends), procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    # the workers' ports change every run: their invariance verdicts go to a scratch cache
    monkeypatch.setenv("SPECBOUND_CACHE", str(tmp_path / "cache"))


def test_worker_help_states_the_security_note():
    out = subprocess.run([sys.executable, "-m", "specbound_cpp.rpc_server", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "no authentication and no encryption" in text and "loopback" in text and "private network" in text


def test_worker_refuses_a_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "specbound_cpp.rpc_server", "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "could not start" in out.stderr, out.stderr


def test_ggml_abort_inside_the_guard_is_an_exception():
    """The fallback where ggml's RPC client aborts on the calling thread (a
    handshake it rejects): the abort unwinds to us as an exception, and the
    process lives on."""
    from specbound_cpp import _core

    assert _core._guarded_ggml_abort("worker said no") == "ggml: test:1: worker said no"
    assert _core._guarded_ggml_abort("again") == "ggml: test:1: again"


def test_bad_rpc_arguments_raise(smollm2_path):
    from specbound_cpp import Llama

    for bad in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", "a:1,,b:2", "h:1,h:1", 5):
        with pytest.raises(ValueError, match="rpc_servers"):
            Llama(smollm2_path, rpc_servers=bad, n_gpu_layers=-1, **ARGS)
    with pytest.raises(ValueError, match="n_gpu_layers"):
        Llama(smollm2_path, rpc_servers="127.0.0.1:1", **ARGS)
    with pytest.raises(ValueError, match="rpc_timeout"):
        Llama(smollm2_path, rpc_servers="127.0.0.1:1", n_gpu_layers=-1, rpc_timeout=0, **ARGS)


def test_plain_over_two_workers_is_local_plain(workers, smollm2_path):
    # SmolLM2's Q4_1 weights are not repacked locally, so both sides run the
    # same kernels (README: the 1.5B's Q4_K weights are repacked locally, not
    # on a worker, and the two part at the 4th token)
    from specbound_cpp import Llama

    endpoints, _ = workers
    local = Llama(smollm2_path, specbound=False, **ARGS)
    want = local(PROMPT, max_tokens=48, temperature=0.0)["choices"][0]["text"]
    want_tokens = local.last_completion_tokens
    local.close()
    remote = Llama(smollm2_path, rpc_servers=endpoints, n_gpu_layers=-1, specbound=False, **ARGS)
    try:
        devices = remote._session.devices()
        a, b = endpoints.split(",")
        # 30 layers split by the workers' (equal) free memory; the head on the last
        assert f"RPC {a}, layers 0-14" in devices and f"RPC {b}, layers 15-29, output head" in devices, devices
        got = remote(PROMPT, max_tokens=48, temperature=0.0)["choices"][0]["text"]
        assert remote.last_completion_tokens == want_tokens and got == want
    finally:
        remote.close()


def test_tensor_split_and_partial_offload(workers, smollm2_path):
    from specbound_cpp import Llama

    endpoints, _ = workers
    a, b = endpoints.split(",")
    llm = Llama(smollm2_path, rpc_servers=endpoints, n_gpu_layers=20, tensor_split=[1, 3], specbound=False, **ARGS)
    try:
        # the last 20 of 30 layers, a quarter on the first worker; the head stays on the CPU
        assert llm._session.devices()[2:4] == [f"RPC {a}, layers 10-14", f"RPC {b}, layers 15-29"]
        assert llm("The capital of France is", max_tokens=8, temperature=0.0)["choices"][0]["text"]
    finally:
        llm.close()


def test_specbound_over_rpc_is_plain_or_refused(workers, smollm2_path):
    """The run-time invariance check decides, as on a GPU: where it passes,
    SpecBound gives plain decoding's text; where not, it falls back and
    specbound=True raises with the reason."""
    from specbound_cpp import Llama

    endpoints, _ = workers
    llm = Llama(smollm2_path, rpc_servers=endpoints, n_gpu_layers=-1, **ARGS)
    try:
        verdict = llm.invariance
        assert verdict is not None and verdict["batch_sizes"]
        print(f"invariance over RPC: ok={verdict['ok']} source={llm.specbound_source!r}")
        if verdict["ok"]:
            llm.specbound = True
            spec = llm(PROMPT, max_tokens=48, temperature=0.0)["choices"][0]["text"]
            llm.specbound = False
            assert spec == llm(PROMPT, max_tokens=48, temperature=0.0)["choices"][0]["text"]
        else:
            assert llm.specbound_source.startswith("plain decoding: invariance check failed")
    finally:
        llm.close()
    if not verdict["ok"]:
        with pytest.raises(RuntimeError, match="would not be exact"):
            Llama(smollm2_path, rpc_servers=endpoints, n_gpu_layers=-1, specbound=True, **ARGS)


def run_fault(*argv: str, timeout: float = 300) -> str:
    proc = subprocess.run([sys.executable, FAULTS, *argv], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_unreachable_worker_at_load_raises(smollm2_path):
    out = run_fault("unreachable", smollm2_path, timeout=120)
    assert "OK unreachable" in out


def test_worker_answering_garbage_raises(smollm2_path):
    out = run_fault("garbage", smollm2_path, timeout=120)
    assert "OK garbage (an HTTP server)" in out and "OK garbage (a wrong protocol version)" in out


def test_worker_answering_garbage_mid_generation_raises_and_recovers(workers, smollm2_path):
    endpoints, _ = workers
    out = run_fault("garbage_midway", smollm2_path, endpoints)
    assert "OK garbage midway: RPC worker" in out and "same text once the answers are sound" in out


def test_worker_dying_mid_generation_raises_and_recovers(workers, smollm2_path):
    endpoints, procs = workers
    out = run_fault("dies", smollm2_path, endpoints, str(procs[1].pid))
    assert "OK dies: raised" in out and "OK dies: same text once the worker is back" in out


def test_worker_that_stops_answering_times_out(workers, smollm2_path):
    endpoints, procs = workers
    out = run_fault("stalls", smollm2_path, endpoints, str(procs[0].pid))
    assert "OK stalls" in out
