"""One system per worker process: spawned (a fresh interpreter, so that its
peak RSS is its own and not the driver's), loaded once, then asked for one
generation at a time over a pipe."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import subprocess
import time
import traceback
from pathlib import Path
from typing import List

from llama_server import SERVER_SYSTEMS, LlamaServerWorker
from systems import IK_SYSTEM, make_runner

# the interpreter of the venv that holds ik-llama-cpp-python (tools/setup.sh --bench-ik)
IK_PYTHON = os.environ.get("SPECBOUND_IK_PYTHON", str(Path(__file__).resolve().parents[2] / ".venv-ik" / "bin" / "python"))


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


class IkWorker:
    """The ik_llama.cpp peer: the same driver interface as Worker, over a child
    process of ik-llama-cpp-python's own venv (ik_worker.py: it bundles a second
    libggml, and one process must hold one ggml). JSON lines on its stdin/stdout."""

    def __init__(self, cfg: dict):
        self.name = cfg["system"]
        if not Path(IK_PYTHON).is_file():
            raise RuntimeError(f"{self.name}: no interpreter at {IK_PYTHON} (bash tools/setup.sh --bench-ik, "
                               "or set SPECBOUND_IK_PYTHON)")
        script = Path(__file__).resolve().parent / "ik_worker.py"
        # passive OpenMP waits: an idle peer must not spin on the cores the others are timed on
        env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([IK_PYTHON, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        self.info = self._ask({k: cfg[k] for k in ("path", "n_ctx", "threads")})["info"]
        self.info["load_s"] = time.perf_counter() - t0
        self.n_layer = self.info["n_layer"] = _gguf_n_layer(cfg["path"])

    def _ask(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} worker died (exit code {self.proc.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.name} worker failed:\n{reply['error']}")
        return reply

    def run(self, tokens: List[int], n: int) -> dict:
        rec = self._ask({"run": tokens, "n": n})
        rec["layer_evals"] = self.n_layer * rec["emitted"]
        return rec

    def close(self) -> int:
        rss_kb = self._ask({"exit": True})["maxrss_kb"]
        self.proc.wait()
        return rss_kb


def _gguf_n_layer(path: str) -> int:
    from gguf import GGUFReader  # in the bench extra (pyproject.toml)

    r = GGUFReader(path)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    return int(r.fields[f"{arch}.block_count"].parts[-1][0])


def make_worker(cfg: dict):
    if cfg["system"] in SERVER_SYSTEMS:  # a llama-server process, asked over HTTP from the driver
        return LlamaServerWorker(cfg, _gguf_n_layer(cfg["path"]))
    return IkWorker(cfg) if cfg["system"] == IK_SYSTEM else Worker(cfg)
