"""A worker for Llama(..., rpc_servers="host:port,..."): ggml's RPC server
over this machine's CPU.

    python -m specbound_cpp.rpc_server --host 127.0.0.1 --port 50052 [--threads N]

SECURITY: ggml's RPC protocol has no authentication and no encryption. Anyone
who can connect to the worker can run computations on it and read or write its
memory buffers. Bind it to loopback (the default) or to an address on a private
network you trust; never expose it to the internet.
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import socket
import subprocess
import sys
import time
from typing import List, Optional

SECURITY_NOTE = (
    "SECURITY: ggml's RPC protocol has no authentication and no encryption: anyone who can "
    "reach the port can use this worker and read its buffers. Bind it to loopback (the default) "
    "or to a private network you trust, never to a public address."
)


def free_loopback_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (the system's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local_worker(port: int, threads: int = 1, timeout: float = 60.0, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """A worker on 127.0.0.1:port in a child process, returned once it accepts
    connections (the tests and tools/rpc_loopback.py run theirs this way).
    RuntimeError if it exits or does not listen within timeout seconds; with
    stderr=subprocess.PIPE the error carries the end of what it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "specbound_cpp.rpc_server", "--port", str(port),
                             "--threads", str(threads)], stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    err = proc.communicate()[1] if stderr == subprocess.PIPE else None
    raise RuntimeError(f"the worker on port {port} did not start" + (f": {err[-2000:]!r}" if err else ""))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m specbound_cpp.rpc_server",
        description="A worker of ggml's RPC backend for specbound_cpp's Llama(rpc_servers=...): the "
        "model's offloaded layers run here, on this machine's CPU. " + SECURITY_NOTE,
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                        "a private-network address to serve other machines)")
    p.add_argument("--port", type=int, default=50052, help="TCP port (default 50052)")
    p.add_argument("--threads", type=int, default=max(multiprocessing.cpu_count() // 2, 1),
                   help="CPU threads for the computations (default: half the cores)")
    p.add_argument("--cache", default="",
                   help="a directory where the worker keeps large tensors it was sent, so that a "
                        "reload sends only their hashes (ggml's RPC cache; default: none)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.port <= 65535:
        print(f"rpc_server: --port must be in [1, 65535], got {args.port}", file=sys.stderr)
        return 2
    if args.threads < 1:
        print(f"rpc_server: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    from . import _core

    if not _core.rpc_available():
        print("rpc_server: this llama-cpp-python's ggml has no RPC backend (built without GGML_RPC=ON; "
              "tools/setup.sh builds it with the backend)", file=sys.stderr)
        return 1
    try:  # ggml's server takes an IPv4 address only
        address = socket.gethostbyname(args.host)
    except OSError as e:
        print(f"rpc_server: --host {args.host!r} is not an IPv4 address or a name of one ({e})", file=sys.stderr)
        return 2
    if not address.startswith("127."):
        print("rpc_server: " + SECURITY_NOTE, file=sys.stderr)
    # The server runs in C++ until the process ends; Python's Ctrl-C handler
    # would only set a flag nobody reads: let SIGINT end the process.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        _core.rpc_serve(f"{address}:{args.port}", args.threads, args.cache)
    except (RuntimeError, ValueError) as e:
        print(f"rpc_server: {e}", file=sys.stderr)
        return 1
    return 1  # not reached: the server returns only by raising


if __name__ == "__main__":
    sys.exit(main())
