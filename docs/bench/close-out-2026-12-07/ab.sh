# before/after bench: run from anywhere with /work/wt-old a checkout of the old commit (its own .venv) and /work/main the new one
set -e
for i in 1 2; do
  for v in old main; do
    if [ $v = main ]; then cd /work/main; else cd /work/wt-old; fi
    echo "=== $v run $i $(date +%T)"
    .venv/bin/python tools/bench/run.py --models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b --workloads codeedit,longform --prompts 2 --tokens 128 --systems llama_cpp,ours_plain,specbound --out /tmp/ab_${v}_$i > /tmp/ab_${v}_$i.log 2>&1 || echo FAIL
  done
done
