"""Two rules of the C++ core's shape, checked on the sources (nothing is built):
dependencies between speculation/ and decode/ run one way (decode/, the
decoding loop, uses speculation/; no file in speculation/ includes decode/),
and no function body over 60 lines in cpp/ (tools/check_cpp_function_length.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_speculation_does_not_include_decode():
    found = [f"{p.relative_to(ROOT)}: {line.strip()}"
             for p in sorted((ROOT / "cpp" / "speculation").iterdir())
             for line in p.read_text().splitlines() if re.match(r'\s*#\s*include\s*"decode/', line)]  # fmt: skip
    assert not found, found


def test_no_cpp_function_body_over_60_lines():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "check_cpp_function_length.py")], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
