"""Procedural scene benchmarks → the ``## Procedural scenes`` section of docs/BENCHMARKS.md and
docs/bench/scenes_resolution.png.

1. **Per kind**: wall-clock and CPU time of ``make_scene(seed, views=4, width=224, height=224,
   kind=...)``, median of 5 scenes (seeds 0–4) after one warm-up scene per kind.
   The cold first call (decoding the bundled photos once per process) is reported separately.
2. **Training batches**: scenes per second from ``make_batch`` (in-process) and from a ``DataLoader`` over
   ``ProceduralDataset`` with 2 worker processes (4 views, 224×224, kinds by seed).
3. **Resolution sweep**: median time of a 4-view scene at 112², 224², 448² per kind (plotted).

It also redraws docs/bench/scenes_examples.png (one scene per kind: three views and the first view's depth).

Run: ``python -m bench.scenes`` (``--quick`` for a short run that does not touch the docs).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from bench._report import cpu_name, write_section

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
PLOT = ROOT / "docs" / "bench" / "scenes_resolution.png"
EXAMPLES = ROOT / "docs" / "bench" / "scenes_examples.png"
SECTION = "## Procedural scenes"


def _median_time(fn, seeds: list[int]) -> tuple[float, float, float, float]:
    """Median, min and max wall-clock seconds, and median CPU seconds of this process, of ``fn(seed)``."""
    times, cpu = [], []
    for s in seeds:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(s)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), min(times), max(times), statistics.median(cpu)


def bench_kinds(runs: int) -> tuple[dict, float]:
    from models.data import KINDS, make_scene

    start = time.perf_counter()
    make_scene(100, views=4, width=224, height=224, kind="objects")  # cold: decodes photos on first use
    cold = time.perf_counter() - start
    for k in KINDS:  # warm every kind's textures once
        make_scene(101, views=4, width=224, height=224, kind=k)
    scene = lambda s, k: make_scene(s, views=4, width=224, height=224, kind=k)  # noqa: E731
    return {k: _median_time(lambda s, k=k: scene(s, k), list(range(runs))) for k in KINDS}, cold


def bench_batches(batch: int, rounds: int) -> dict:
    import torch

    from models.data import ProceduralDataset, make_batch

    seeds = list(range(batch * rounds))
    start = time.perf_counter()
    for r in range(rounds):
        make_batch(seeds[r * batch : (r + 1) * batch], views=4, width=224, height=224)
    in_proc = len(seeds) / (time.perf_counter() - start)
    ds = ProceduralDataset(seeds, views=4, width=224, height=224)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=2)
    start = time.perf_counter()
    n = sum(b["images"].shape[0] for b in loader)
    workers = n / (time.perf_counter() - start)
    return {"make_batch": in_proc, "loader": workers}


def bench_resolution(sizes: list[int], runs: int) -> dict:
    from models.data import KINDS, make_scene

    out = {}
    for k in KINDS:
        for size in sizes:
            out[(k, size)] = _median_time(
                lambda s, k=k, size=size: make_scene(s, views=4, width=size, height=size, kind=k),
                list(range(runs)),
            )[0]
    return out


def plot(res: dict, sizes: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.data import KINDS

    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for k in KINDS:
        ax.plot([s * s * 4 / 1e6 for s in sizes], [res[(k, s)] for s in sizes], marker="o", label=k)
    ax.set_xlabel("pixels per scene (millions; 4 views of S×S, S = 112, 224, 448)")
    ax.set_ylabel("seconds per scene (median)")
    ax.set_title("make_scene (one CPU thread)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT)
    plt.close(fig)


def draw_examples(seed: int = 1, width: int = 160, height: int = 120) -> None:
    """One row per kind: three views of one scene, then the first view's inverse depth (sky black)."""
    import numpy as np
    from PIL import Image

    from models.data import KINDS, make_scene

    rows = []
    for k in KINDS:
        s = make_scene(seed, views=3, width=width, height=height, kind=k)
        d = s.depth[0]
        inv = np.where(s.valid[0], 1.0 / np.maximum(d, 1e-6), 0.0)
        shade = inv / max(float(inv.max()), 1e-6)
        tiles = [*s.images, np.repeat(shade[..., None], 3, -1)]
        rows.append(
            np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=1.0) for t in tiles], 1)
        )
    EXAMPLES.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8)).save(EXAMPLES, optimize=True)


def render_section(
    kinds: dict, cold: float, batches: dict, res: dict, sizes: list[int], load: tuple[float, float]
) -> str:
    import torch

    from models.data import KINDS

    lines = [
        SECTION,
        "",
        "`python -m bench.scenes` (the generator of `models/data/`, CPU ray casting with torch "
        f"{torch.__version__}). Machine: {cpu_name()}, {os.cpu_count()} cores shared with other work "
        f"(load average {load[0]:.1f} before, {load[1]:.1f} after the run), "
        f"Python {platform.python_version()}.",
        "",
        "One scene = 4 views of 224×224 with RGB, z-depth, validity, K and extrinsics. Median (min–max) of 5",
        "scenes (seeds 0–4) per kind after a warm-up; the renderer uses one CPU thread (see docs/DATA.md).",
        "CPU time is this process's own, which other load on the machine does not inflate. Target: ≤ 0.5 s.",
        "",
        "| kind | wall (s), median (min–max) | CPU (s), median |",
        "| --- | --- | --- |",
    ]
    for k in KINDS:
        m, lo, hi, cpu = kinds[k]
        lines.append(f"| {k} | {m:.3f} ({lo:.3f}–{hi:.3f}) | {cpu:.3f} |")
    lines += [
        "",
        f"Cold first scene in a fresh process (decodes the bundled scikit-image photos once): {cold:.2f} s.",
        "",
        "Training throughput (4 views, 224×224, kinds by seed, batches of 8, measured one after the other): "
        f"`make_batch` in-process {batches['make_batch']:.1f} scenes/s; `DataLoader(ProceduralDataset, "
        f"num_workers=2)` {batches['loader']:.1f} scenes/s.",
        "",
        "Resolution sweep, wall clock, median of 3 scenes (s per 4-view scene):",
        "",
        "| kind | " + " | ".join(f"{s}×{s}" for s in sizes) + " |",
        "| --- | " + " | ".join("---" for _ in sizes) + " |",
    ]
    for k in KINDS:
        lines.append(f"| {k} | " + " | ".join(f"{res[(k, s)]:.3f}" for s in sizes) + " |")
    lines += [
        "",
        f"![scene time vs resolution]({PLOT.relative_to(DOC.parent).as_posix()})",
        "",
        f"Examples (rows: {', '.join(KINDS)}; three views, then the first view's inverse depth):",
        "",
        f"![procedural scenes]({EXAMPLES.relative_to(DOC.parent).as_posix()})",
        "",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs, print only, no docs update")
    args = ap.parse_args(argv)
    runs = 2 if args.quick else 5
    sizes = [112, 224] if args.quick else [112, 224, 448]
    load_before = os.getloadavg()[0]
    kinds, cold = bench_kinds(runs)
    batches = bench_batches(8 if not args.quick else 2, 2)
    res = bench_resolution(sizes, 2 if args.quick else 3)
    load = (load_before, os.getloadavg()[0])
    text = render_section(kinds, cold, batches, res, sizes, load)
    print(text)
    if not args.quick:
        plot(res, sizes)
        draw_examples()
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
