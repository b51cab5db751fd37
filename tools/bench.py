"""The benchmark: `python tools/bench.py [options]`, the same as
`python -m specbound_cpp.bench [options]` (see python/specbound_cpp/bench.py)."""

import sys

from specbound_cpp.bench import main

if __name__ == "__main__":
    sys.exit(main())
