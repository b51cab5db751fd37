"""Two rules of the code's shape, checked on the sources (nothing is built or
imported): no import cycle among the package's modules, deferred imports
included (tools/check_import_cycles.py), and no function body over 60 lines
in the package and tools/ (tools/check_function_length.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _check(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOLS / script)], capture_output=True, text=True, timeout=60)


def test_no_import_cycle():
    r = _check("check_import_cycles.py")
    assert r.returncode == 0, r.stdout + r.stderr
    deps = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line and "cycle" not in line)
    # the calibrated profile on disk and the cost probe depend on neither calibration nor each other
    assert deps["profile_store"] == "models" and deps["costs"] == "-"
    assert "calibrate" not in deps["profile"] and "profile" not in deps["calibrate"].split(", ")


def test_no_function_body_over_60_lines():
    r = _check("check_function_length.py")
    assert r.returncode == 0, r.stdout + r.stderr
