"""One system per worker process: spawned (a fresh interpreter, so that its
peak RSS is its own and not the driver's), loaded once, then asked for one
generation at a time over a pipe."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
import traceback
from typing import List

from systems import make_runner


def _worker_main(conn, cfg: dict) -> None:
    """Worker process: load one system, answer ("run", tokens, n) requests until
    ("exit",), then report its peak RSS."""
    try:
        runner = make_runner(cfg)
        conn.send({"info": runner.info})
        while True:
            msg = conn.recv()
            if msg[0] == "exit":
                break
            conn.send(runner.run(msg[1], msg[2]))
        conn.send({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
    except BaseException:
        conn.send({"error": traceback.format_exc()})


class Worker:
    """Driver side of one system's worker process."""

    def __init__(self, cfg: dict):
        self.name = cfg["system"]
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, cfg), daemon=True)
        t0 = time.perf_counter()
        self.proc.start()
        child.close()
        self.info = self._recv()["info"]
        self.info["load_s"] = time.perf_counter() - t0

    def _recv(self) -> dict:
        try:
            msg = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"{self.name} worker died (exit code {self.proc.exitcode})") from None
        if "error" in msg:
            raise RuntimeError(f"{self.name} worker failed:\n{msg['error']}")
        return msg

    def run(self, tokens: List[int], n: int) -> dict:
        self.conn.send(("run", tokens, n))
        return self._recv()

    def close(self) -> int:
        self.conn.send(("exit",))
        rss_kb = self._recv()["maxrss_kb"]
        self.proc.join()
        return rss_kb
