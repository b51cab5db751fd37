#!/bin/bash
# usage: ab.sh OUTDIR ROUNDS MODEL KS [A.so B.so]
cd /work/main
SO=.venv/lib/python3.11/site-packages/specbound_cpp/_core.cpython-311-x86_64-linux-gnu.so
out=$1; rounds=$2; model=$3; ks=$4; A=${5:-/tmp/ab/A.so}; B=${6:-/tmp/ab/B.so}
mkdir -p $out
for r in $(seq 1 $rounds); do
  for v in A B; do
    f=$A; [ $v = B ] && f=$B
    cp $f $SO
    .venv/bin/python docs/bench/kernels-2026-12-07/op_times.py $model $ks > $out/$model-$v-$r.txt 2>&1
  done
done
cp $B $SO
grep -H "wall" $out/$model-*.txt
