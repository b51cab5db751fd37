"""Subprocess of tests/test_gguf_fuzz.py: loads mutated copies of a GGUF with
specbound_cpp.Llama, one case after another, and prints one line per case.

argv: the original GGUF, a scratch file path, then a JSON list of cases
[kind, offset, value]: ("byte", offset, new byte value) or ("truncate", size, 0).
Byte cases patch the scratch copy in place and restore the byte afterwards;
truncations come last, longest first, each cutting the copy shorter. A case
that loads generates a few greedy tokens. Output: `CASE i loaded|refused ...`.
A fatal signal ends the process: the parent sees which case was running."""

import json
import os
import shutil
import sys


def main() -> int:
    original, scratch, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    from specbound_cpp import Llama

    shutil.copyfile(original, scratch)
    with open(original, "rb") as f:
        pristine = f.read(max((c[1] + 1 for c in cases if c[0] == "byte"), default=0))
    for i, (kind, offset, value) in enumerate(cases):
        print(f"START {i}", flush=True)
        if kind == "byte":
            with open(scratch, "r+b") as f:
                f.seek(offset)
                f.write(bytes([value]))
        else:
            os.truncate(scratch, offset)
        try:
            llm = Llama(scratch, n_ctx=64, n_threads=1, n_threads_batch=1, verbose=False)
            out = llm("Hello", max_tokens=3, temperature=0)
            llm.close()
            print(f"CASE {i} loaded {out['usage']['completion_tokens']}", flush=True)
        except Exception as e:  # a clear Python exception is the expected outcome for a bad file
            print(f"CASE {i} refused {type(e).__name__}: {str(e)[:400]!r}", flush=True)
        if kind == "byte":
            with open(scratch, "r+b") as f:
                f.seek(offset)
                f.write(pristine[offset:offset + 1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
