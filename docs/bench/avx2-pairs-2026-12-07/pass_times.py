"""Wall ms of one forward pass of k rows (THREADS threads, default 2; 128 cached positions, logits for every row), best of 3 x 10. Usage: MODEL K[,K..] LABEL [THREADS]"""
import sys
from specbound_cpp import _core
from specbound_cpp.models import model_path
from specbound_cpp.profile import open_session
s = open_session(model_path(sys.argv[1], progress=False), int(sys.argv[4]) if len(sys.argv) > 4 else 2, 128)
L = s.n_layer
ks = [int(v) for v in sys.argv[2].split(",")]
res = {}
for k in ks:
    res[k] = min(_core.testing.time_forward(s, k, 128, 0, L, True, False, 10, True) for _ in range(3))
print(sys.argv[3] if len(sys.argv) > 3 else "", " ".join(f"k={k}:{res[k]:.1f}" for k in ks), " ratio8=%.2f" % (res[8] / res[1]) if 8 in res and 1 in res else "")
