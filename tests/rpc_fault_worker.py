"""Subprocess of tests/test_rpc.py: one RPC fault, end to end, in a process of
its own (whatever ggml does, the parent test survives and sees it).

argv: the fault ("unreachable", "dies", "garbage", "garbage_midway", "stalls"), the GGUF path,
then the worker endpoints the parent started (host:port, comma-separated; the
"dies" fault restarts the second one on its port). Prints "OK ..." lines on
success; anything else (an assertion, an abort, a hang the parent times out)
is a failure the parent reports."""

import os
import signal
import socket
import sys
import threading
import time

from specbound_cpp import Llama, RpcError
from specbound_cpp.rpc_server import free_loopback_port as free_port, start_local_worker

ARGS = dict(n_ctx=256, n_threads=2, n_threads_batch=2, verbose=False, specbound=False)
PROMPT = "The three primary colors are"






def unreachable(path: str) -> None:
    port = free_port()  # nobody listens there
    t0 = time.monotonic()
    try:
        Llama(path, rpc_servers=f"127.0.0.1:{port}", n_gpu_layers=-1, **ARGS)
        raise AssertionError("a load over an unreachable worker succeeded")
    except RpcError as e:
        assert f"127.0.0.1:{port}" in str(e) and "not reachable" in str(e), str(e)
        assert isinstance(e, ConnectionError)
    print(f"OK unreachable in {time.monotonic() - t0:.2f} s", flush=True)


def dies(path: str, endpoints: str, pid: int) -> None:
    """The second worker is killed during a streamed completion; the call
    raises RpcError; later calls raise while it is down and give the plain
    text again once it is back on its port."""
    llm = Llama(path, rpc_servers=endpoints, n_gpu_layers=-1, **ARGS)
    want = llm(PROMPT, max_tokens=24, temperature=0.0)["choices"][0]["text"]
    stream = llm(PROMPT, max_tokens=200, temperature=0.0, stream=True)
    next(stream)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    try:
        for _ in stream:
            pass
        raise AssertionError("the completion went on after its worker was killed")
    except RpcError as e:
        assert endpoints.split(",")[1] in str(e), str(e)
        print(f"OK dies: raised in {time.monotonic() - t0:.2f} s: {e}", flush=True)
    port = int(endpoints.split(",")[1].rsplit(":", 1)[1])
    deadline = time.monotonic() + 10  # the killed worker's listening socket closes as its process ends
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.05)
        except OSError:
            break
    try:
        llm(PROMPT, max_tokens=4, temperature=0.0)
        raise AssertionError("a call succeeded while the worker was down")
    except RpcError as e:
        assert "not reachable" in str(e), str(e)
    assert llm.tokenize(b"still works")  # the broken model's vocabulary serves meanwhile
    worker = start_local_worker(port)
    try:
        again = llm(PROMPT, max_tokens=24, temperature=0.0)["choices"][0]["text"]
        assert again == want, (again, want)
        print("OK dies: same text once the worker is back", flush=True)
    finally:
        del llm
        worker.kill()


def garbage_server(answer: bytes) -> int:
    """A listener that answers every connection's first bytes with `answer`."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            c, _ = srv.accept()
            try:
                c.recv(4096)
                c.sendall(answer)
            except OSError:
                pass
            time.sleep(0.2)
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def garbage(path: str) -> None:
    cases = {
        "an HTTP server": (b"HTTP/1.1 400 Bad Request\r\n\r\n", "answered garbage"),
        "a wrong protocol version": ((28).to_bytes(8, "little") + bytes([3, 0, 0, 0]) + bytes(24),
                                     "protocol 3.0"),
    }  # fmt: skip
    for name, (answer, expect) in cases.items():
        port = garbage_server(answer)
        try:
            Llama(path, rpc_servers=f"127.0.0.1:{port}", n_gpu_layers=-1, **ARGS)
            raise AssertionError(f"a load over {name} succeeded")
        except RpcError as e:
            assert expect in str(e), (name, str(e))
            print(f"OK garbage ({name}): {e}", flush=True)


def corrupting_relay(target: str, corrupt: threading.Event) -> int:
    """A loopback relay to the worker `target` that replaces the worker's bytes
    with random ones while `corrupt` is set: a worker answering garbage in the
    middle of a generation."""
    host, port = target.rsplit(":", 1)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def pipe(src, dst, garble):
        try:
            while data := src.recv(65536):
                dst.sendall(os.urandom(len(data)) if garble and corrupt.is_set() else data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve():
        while True:
            c, _ = srv.accept()
            w = socket.create_connection((host, int(port)))
            threading.Thread(target=pipe, args=(c, w, False), daemon=True).start()
            threading.Thread(target=pipe, args=(w, c, True), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def garbage_midway(path: str, endpoints: str) -> None:
    """The second worker's answers turn to garbage between two completions:
    the second raises RpcError; once they are sound again, the third reloads
    and gives the first's text."""
    corrupt = threading.Event()
    first, second = endpoints.split(",")
    relayed = f"{first},127.0.0.1:{corrupting_relay(second, corrupt)}"
    llm = Llama(path, rpc_servers=relayed, n_gpu_layers=-1, **ARGS)
    want = llm(PROMPT, max_tokens=16, temperature=0.0)["choices"][0]["text"]
    corrupt.set()
    try:
        llm(PROMPT + " and", max_tokens=16, temperature=0.0)
        raise AssertionError("a completion succeeded on garbage answers")
    except RpcError as e:
        assert "answered garbage" in str(e), str(e)
        print(f"OK garbage midway: {e}", flush=True)
    corrupt.clear()
    again = llm(PROMPT, max_tokens=16, temperature=0.0)["choices"][0]["text"]
    assert again == want, (again, want)
    print("OK garbage midway: same text once the answers are sound", flush=True)


def stalls(path: str, endpoints: str, pid: int) -> None:
    """A worker that stops answering (SIGSTOP) ends the call after rpc_timeout."""
    llm = Llama(path, rpc_servers=endpoints, n_gpu_layers=-1, rpc_timeout=3, **ARGS)
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        llm(PROMPT, max_tokens=8, temperature=0.0)
        raise AssertionError("a completion succeeded on a stopped worker")
    except RpcError as e:
        assert "no answer within 3 s" in str(e), str(e)
        print(f"OK stalls: raised in {time.monotonic() - t0:.2f} s: {e}", flush=True)
    finally:
        os.kill(pid, signal.SIGCONT)


def main() -> int:
    fault, path = sys.argv[1], sys.argv[2]
    if fault == "unreachable":
        unreachable(path)
    elif fault == "garbage":
        garbage(path)
    elif fault == "dies":
        dies(path, sys.argv[3], int(sys.argv[4]))
    elif fault == "garbage_midway":
        garbage_midway(path, sys.argv[3])
    elif fault == "stalls":
        stalls(path, sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown fault {fault!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
