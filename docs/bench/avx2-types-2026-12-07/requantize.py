"""The registry 0.5B requantized to the other common types with llama-cpp-python's own quantizer
(llama_model_quantize, allow_requantize), into the model cache beside the test suite's Q4_0 / IQ4_XS / Q5_K_M."""
import ctypes, sys
from pathlib import Path
import llama_cpp
from specbound_cpp.models import cache_dir, model_path
FT = {"f16": 1, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q3_k_m": 12, "q6_k": 18, "iq4_nl": 25, "bf16": 32}
src = model_path("qwen2.5-coder-0.5b", progress=False)
for q, ft in FT.items():
    out = Path(cache_dir()) / "requantized" / f"qwen2.5-coder-0.5b-{q}.gguf"
    if out.exists(): continue
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ft; p.allow_requantize = True; p.nthread = 2
    tmp = out.with_suffix(".tmp")
    assert llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(p)) == 0
    tmp.rename(out); print(q, out.stat().st_size, flush=True)
