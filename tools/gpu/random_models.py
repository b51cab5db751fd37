"""Write the random qwen3 test models (tools/random_qwen3.py, as the tests
do) for a GPU run that cannot wait for a registry model's uploads: F16
weights (ggml-cuda's mmvf and cuBLAS paths) and Q4_1 weights (mmvq and MMQ),
each a few MiB besides the tokenizer. Needs a registry model's tokenizer (smollm2-135m) here.

    python tools/gpu/random_models.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TYPES = ("F16", "Q4_1")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.exit(__doc__)
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "tools"))
    from random_qwen3 import write_random_qwen3_gguf

    from specbound_cpp.models import model_path

    tokenizer_from = model_path("smollm2-135m", progress=False)
    for t in TYPES:
        path = out / f"qwen3-random-{t.lower()}.gguf"
        write_random_qwen3_gguf(str(path), tokenizer_from, weight_type=t)
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
