"""``make bench``: run every benchmark script in ``bench/`` one after another.

Each ``bench/<name>.py`` is a standalone script (``python -m bench.<name>``) that measures medians of several
runs and rewrites its own section of ``docs/BENCHMARKS.md``. Running them one at a time keeps them from
competing for the two cores. Pass names to run a subset: ``python -m bench.run_all render model``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

SKIP = {"__init__", "run_all"}


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(
        p.stem for p in here.glob("*.py") if p.stem not in SKIP and not p.stem.startswith("_")
    )
    failed = []
    for name in names:
        start = time.perf_counter()
        print(f"== bench.{name}", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"])
        print(f"== bench.{name}: exit {rc} after {time.perf_counter() - start:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
