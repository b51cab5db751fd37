"""The ik_llama.cpp peer of the benchmark, run by the interpreter of its own
venv (ik-llama-cpp-python bundles a second libggml/libllama; one process must
hold one ggml). Standard library and numpy only: it cannot import the bench.

Protocol: one JSON object per line. The driver sends
  {"path", "n_ctx", "threads"}                 first, answered with {"info": {...}}
  {"run": [token ids], "n": max new tokens}    answered with a result record
  {"exit": true}                               answered with {"maxrss_kb": ...}
Errors are answered with {"error": traceback}.

Greedy decoding reads the logits row and takes its argmax in numpy: the
package's own IkContext.sample builds an n_vocab-entry ctypes array in a Python
loop for every token (about 30 ms for Qwen's 151k vocabulary), which would
measure that loop instead of ik_llama.cpp. The first maximum wins, as in
llama.cpp's greedy sampler.
"""

import json
import resource
import sys
import time
import traceback

import numpy as np
from ik_llama_cpp import _ctypes_api as C
from ik_llama_cpp._internals import IkContext, IkModel, make_batch_range, make_batch_single


class IkRunner:
    def __init__(self, cfg: dict):
        self.model = IkModel(cfg["path"])
        # flash attention off, as llama-cpp-python's default (the baseline) has it;
        # IkLlama itself turns it off on CPUs without AVX-VNNI (an assert in its FA kernels)
        self.ctx = IkContext(self.model, n_ctx=cfg["n_ctx"], n_threads=cfg["threads"], flash_attn=False)
        self.n_vocab = self.model.n_vocab
        self.info = {"ik_llama_cpp_python": _version()}

    def _decode(self, batch) -> None:
        rc = self.ctx.decode(batch)
        C.llama_batch_free(batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def _argmax(self) -> int:
        row = np.ctypeslib.as_array(C.llama_get_logits_ith(self.ctx.ctx, -1), shape=(self.n_vocab,))
        return int(row.argmax())

    def run(self, tokens: list, n: int) -> dict:
        self.ctx.kv_cache_clear()
        step = self.ctx._n_ubatch
        t0 = time.perf_counter()
        for i in range(0, len(tokens), step):
            chunk = tokens[i : i + step]
            self._decode(make_batch_range(chunk, pos_start=i, logits_last=i + step >= len(tokens)))
        out, eog, pos = [], False, len(tokens)
        tok = self._argmax()
        t_first = t_last = time.perf_counter()
        while True:
            if C.llama_token_is_eog(self.model.model, tok):
                eog = True
                break
            out.append(tok)
            if len(out) >= n:
                break
            self._decode(make_batch_single(tok, pos))
            pos += 1
            tok = self._argmax()
            t_last = time.perf_counter()
        emitted = len(out) + eog - 1  # after the prompt pass's token
        return {"tokens": out, "eog": eog, "e2e_s": t_last - t0, "decode_s": t_last - t_first,
                "rounds": emitted, "emitted": emitted}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ik-llama-cpp-python")
    except Exception:
        return "unknown"


def main() -> int:
    runner = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if "exit" in msg:
                reply = {"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
            elif "run" in msg:
                reply = runner.run(msg["run"], msg["n"])
            else:
                runner = IkRunner(msg)
                reply = {"info": runner.info}
        except BaseException:
            reply = {"error": traceback.format_exc()}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if "exit" in msg:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
