"""Where one forward pass of k rows goes, by op kind (the engine's op timing):
python op_times.py MODEL_OR_GGUF K[,K...]  (k = 1 is always timed first; 2 threads,
128 cached positions or NPAST from the environment, logits for every row, as the
profile's batch factors)."""
import os
import sys

from specbound_cpp import _core
from specbound_cpp.models import model_path
from specbound_cpp.profile import open_session

n_past = int(os.environ.get("NPAST", 128))
s = open_session(sys.argv[1] if os.path.exists(sys.argv[1]) else model_path(sys.argv[1], progress=False), 2, n_past)
L = s.n_layer
for k in [1] + [int(v) for v in sys.argv[2].split(",")]:
    reps = 10
    t = _core.testing.time_forward(s, k, n_past, 0, L, True, False, reps, True)
    _core.testing.set_op_timing(s, True)
    _core.testing.time_forward(s, k, n_past, 0, L, True, False, reps, True)
    ops = _core.testing.op_timing(s)
    _core.testing.set_op_timing(s, False)
    tot = sum(v[1] for v in ops.values())
    print(f"k={k} wall {t:.2f} ms, ops {tot / reps:.2f} ms")
    for key, (c, ms) in sorted(ops.items(), key=lambda kv: -kv[1][1])[:8]:
        print(f"  {key:36} {c / reps:6.1f} {ms / reps:7.3f} ms {100 * ms / tot:5.1f}%")
