#!/bin/bash
cd /work/main
R=/root/.cache/specbound_cpp/requantized; M=/root/.cache/specbound_cpp
P=""; for t in q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k_m q5_k_m q6_k iq4_nl iq4_xs f16 bf16; do P="$P,$R/qwen2.5-coder-0.5b-$t.gguf"; done
.venv/bin/python docs/bench/parity-2026-12-06/speed.py ${P#,} 3 2>&1 | grep ratio
.venv/bin/python docs/bench/parity-2026-12-06/speed.py $M/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf,$R/qwen2.5-coder-1.5b-q5_k_m.gguf,$R/qwen2.5-coder-1.5b-q3_k_m.gguf,$R/qwen2.5-coder-1.5b-iq4_xs.gguf 3 2>&1 | grep ratio
.venv/bin/python docs/bench/parity-2026-12-06/speed.py $M/random/qwen2.5-3b-q4_0-seed0-v1.gguf,$M/random/qwen2.5-3b-q4_k_m-seed0-v1.gguf,$M/random/qwen2.5-7b-q4_0-seed0-v1.gguf,$M/random/qwen2.5-7b-q4_k_m-seed0-v1.gguf 2 2>&1 | grep ratio
