"""A corrupt GGUF never takes the process down: seeded mutations of the
metadata and tensor-info region of SmolLM2-135M's GGUF, and truncations, each
loaded with specbound_cpp.Llama (and, if it loads, generating 3 tokens) in a
worker subprocess (tests/gguf_fuzz_worker.py). Every case must end in a loaded
model or a Python exception: no signal (GGML_ASSERT aborts), no hang."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

SEED = 13
N_WORKERS = 4  # subprocesses, 2 at a time (2 cores)
WORKER = os.path.join(os.path.dirname(__file__), "gguf_fuzz_worker.py")


def duplicate_token_case(reader, base: int):
    """One byte that makes a token's string equal to another token's (the
    issue's GGML_ASSERT(id_to_token.size() == token_to_id.size()))."""
    field = reader.fields["tokenizer.ggml.tokens"]
    strings = {}
    for i, idx in enumerate(field.data):
        s = bytes(field.parts[idx])
        if len(s) >= 2:
            strings.setdefault(s[:-1], []).append(i)
    for group in strings.values():
        if len(group) >= 2:
            a, b = group[:2]
            part = field.parts[field.data[b]]
            return ["byte", part.ctypes.data - base + part.nbytes - 1, bytes(field.parts[field.data[a]])[-1]]
    raise AssertionError("no two tokens differ in their last byte only")


def fuzz_cases(path: str) -> list:
    import gguf

    rng = random.Random(SEED)
    reader = gguf.GGUFReader(path)
    base = reader.data.ctypes.data
    data_offset, size = reader.data_offset, os.path.getsize(path)
    tensor_info = min(t.field.offset for t in reader.tensors)
    cases = [duplicate_token_case(reader, base)]
    for field in reader.fields.values():  # every scalar value (hyper-parameters, special ids, ...)
        if field.types and field.types[0] not in (gguf.GGUFValueType.STRING, gguf.GGUFValueType.ARRAY):
            value = field.parts[-1]
            cases += [["byte", value.ctypes.data - base + rng.randrange(value.nbytes), rng.randrange(256)]
                      for _ in range(3)]  # fmt: skip
    cases += [["byte", rng.randrange(0, 4096), rng.randrange(256)] for _ in range(50)]  # header, keys, counts
    cases += [["byte", rng.randrange(0, tensor_info), rng.randrange(256)] for _ in range(40)]  # mostly vocabulary
    cases += [["byte", rng.randrange(tensor_info, data_offset), rng.randrange(256)] for _ in range(40)]
    cases += [["truncate", rng.randrange(0, data_offset), 0] for _ in range(10)]
    cases += [["truncate", rng.randrange(0, size), 0] for _ in range(10)]
    return cases


def run_worker(path: str, scratch: str, cases: list) -> subprocess.CompletedProcess:
    # truncations cut the scratch copy shorter and shorter: longest first, last
    try:
        return subprocess.run([sys.executable, WORKER, path, scratch, json.dumps(cases)], capture_output=True,
                              text=True, timeout=400)  # fmt: skip
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return subprocess.CompletedProcess(e.cmd, "timeout", out, "")


def test_corrupt_ggufs_never_kill_the_process(smollm2_path, tmp_path):
    cases = fuzz_cases(smollm2_path)
    assert len(cases) >= 200
    shards = [[] for _ in range(N_WORKERS)]
    for i, case in enumerate(c for c in cases if c[0] == "byte"):
        shards[i % N_WORKERS].append(case)
    for i, case in enumerate(sorted((c for c in cases if c[0] == "truncate"), key=lambda c: -c[1])):
        shards[i % N_WORKERS].append(case)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda k: run_worker(smollm2_path, str(tmp_path / f"fuzz{k}.gguf"), shards[k]),
                             range(N_WORKERS)))  # fmt: skip
    outcomes = {}
    for shard, run in zip(shards, runs):
        started = [line for line in run.stdout.splitlines() if line.startswith("START")]
        where = shard[int(started[-1].split()[1])] if started else None
        assert run.returncode == 0, f"worker ended with {run.returncode} (negative: signal) at case {where}:\n{run.stderr[-3000:]}"
        done = [line.split(" ", 3) for line in run.stdout.splitlines() if line.startswith("CASE")]
        assert len(done) == len(shard)
        for (_, i, outcome, detail), case in zip(done, shard):
            outcomes[tuple(case)] = (outcome, detail)
    kinds = [o for o, _ in outcomes.values()]
    assert set(kinds) == {"loaded", "refused"}, kinds  # both happen: the cases reach past the parser
    outcome, detail = outcomes[tuple(cases[0])]
    assert outcome == "refused" and detail.startswith("ValueError") and "repeats an earlier token" in detail, detail
