"""Tokens/s of plain decoding locally and split over two RPC workers on this
machine (loopback), and what the invariance check decides over the workers.

    python tools/rpc_loopback.py [--models qwen2.5-coder-0.5b qwen2.5-coder-1.5b] [--tokens 64]

Local: one process, --threads threads. RPC: two workers
(python -m specbound_cpp.rpc_server --threads W), all layers and the head
split between them by their free memory; the client keeps the embedding
lookup. Decode tokens/s: last_stats["tokens_per_second"] (the decode phase,
prompt excluded), greedy, the best of two runs after a warm-up. Indicative only on a shared machine: say
the load (uptime) with the figures."""

from __future__ import annotations

import argparse
import os
import sys

from specbound_cpp.rpc_server import free_loopback_port as free_port, start_local_worker

PROMPT = "Write a Python function that returns the n-th Fibonacci number, with a docstring."






def decode_tps(llm, tokens: int):
    """(decode tokens/s, the completion's token ids): the best of two runs'
    decode phase (last_stats), after a warm-up call."""
    llm(PROMPT, max_tokens=4, temperature=0.0)  # warm-up: graphs built, pages touched
    best = 0.0
    for _ in range(2):
        llm.reset()
        llm(PROMPT, max_tokens=tokens, temperature=0.0)
        best = max(best, llm.last_stats["tokens_per_second"])
    return best, llm.last_completion_tokens


def measure(name: str, args) -> None:
    from specbound_cpp import Llama
    from specbound_cpp.models import model_path

    path = model_path(name, progress=False)
    common = dict(n_ctx=1024, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    local = Llama(path, specbound=False, **common)
    tps, want = decode_tps(local, args.tokens)
    print(f"{name}: local plain {tps:.2f} tok/s ({args.threads} threads)", flush=True)
    local.close()
    ports = [free_port()]
    while len(ports) < 2:
        ports += [p for p in [free_port()] if p not in ports]
    procs = [start_local_worker(p, args.worker_threads) for p in ports]
    try:
        ends = ",".join(f"127.0.0.1:{p}" for p in ports)
        remote = Llama(path, rpc_servers=ends, n_gpu_layers=-1, specbound=False, **common)
        tps, got = decode_tps(remote, args.tokens)
        print(f"{name}: RPC plain {tps:.2f} tok/s (2 loopback workers x {args.worker_threads} thread(s)); "
              f"same tokens as local: {got == want}; devices {remote._session.devices()[2:]}", flush=True)
        remote.close()
        spec = Llama(path, rpc_servers=ends, n_gpu_layers=-1, **common)
        v = spec.invariance or {}
        print(f"{name}: RPC invariance ok={v.get('ok')} batches={v.get('batch_sizes')} "
              f"device_columns={spec._session.device_columns} source={spec.specbound_source!r}", flush=True)
        spec.close()
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="client threads (local run and the client's own ops)")
    ap.add_argument("--worker-threads", type=int, default=1, help="threads of each of the two workers")
    args = ap.parse_args()
    print(f"load: {os.getloadavg()}", flush=True)
    for name in args.models:
        measure(name, args)
    print(f"load: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
