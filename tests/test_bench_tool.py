"""The benchmark (tools/bench/) outside the installed package, checked without
running a model: it is not shipped in specbound_cpp, its command line parses,
and its report recomputes the recorded run's summaries in docs/bench/ from that
run's per-prompt records."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "tools" / "bench"


def bench(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Python code run with tools/bench/ importable, as `python tools/bench/run.py` has it."""
    prelude = f"import sys; sys.path.insert(0, {str(BENCH)!r}); "
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)  # fmt: skip


def test_bench_and_reference_are_not_in_the_package():
    assert importlib.util.find_spec("specbound_cpp.bench") is None
    assert importlib.util.find_spec("specbound_cpp.reference") is None


def test_command_line_parses(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--help"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for option in ("--quick", "--shard", "--merge", "--workloads", "--systems", "--models"):
        assert option in proc.stdout
    code = ("import run; a = run.parse_args(['--quick', '--systems', 'specbound']); "
            "print(a.systems, a.tokens, a.workloads)")  # fmt: skip
    proc = bench(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["['llama_cpp',", "'specbound']", "256", "['humaneval',", "'longform',", "'codeedit',", "'multiturn']"]


def test_merge_recomputes_the_recorded_summaries(tmp_path):
    # the plot needs matplotlib (the [bench] extra), which the tests do not install
    code = ("import report; report.plot = lambda *a, **k: None; import run; "
            "sys.exit(run.main(['--merge', %r, '--out', 'merged']))" % str(ROOT / "docs" / "bench"))  # fmt: skip
    proc = bench(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    recorded = json.loads((ROOT / "docs" / "bench" / "results.json").read_text())
    assert merged["summary"] == recorded["summary"]
    assert merged["summary_by_workload"] == recorded["summary_by_workload"]
    table = (tmp_path / "merged" / "results.md").read_text()
    assert all(f"| {row['model']} | {row['system']} |" in table for row in recorded["summary"])


def test_repeat_keeps_the_fastest_run_and_refuses_different_tokens(tmp_path):
    code = ("import run, driver; a = run.parse_args(['--quick', '--repeat', '3']); print(a.repeat); "
            "r1 = {'tokens': [1, 2], 'decode_s': 2.0, 'id': 1}; r2 = {'tokens': [1, 2], 'decode_s': 1.5, 'id': 2}; "
            "r3 = {'tokens': [1, 2], 'decode_s': 1.8, 'id': 3}; "
            "b = driver._faster(driver._faster(driver._faster(None, r1, 's', 'p'), r2, 's', 'p'), r3, 's', 'p'); "
            "print(b['id'], b['repeats']); "
            "driver._faster(b, {'tokens': [1, 3], 'decode_s': 1.0}, 's', 'p')")  # fmt: skip
    proc = bench(code, tmp_path)
    assert proc.stdout.split() == ["3", "2", "3"], proc.stderr
    assert proc.returncode != 0 and "different tokens on two runs of p" in proc.stderr
    proc = bench("import run; run.parse_args(['--repeat', '0'])", tmp_path)
    assert proc.returncode != 0 and "--repeat needs 1 or more" in proc.stderr
