"""What camera refinement (``refine=True``, ``models/refine.py``) costs, against the forward pass.

For each view count, procedural scenes (seeds 0…, the kinds in turn) are reconstructed once with and once
without refinement, the two calls interleaved so both see the same machine load. Reported per view count:
median seconds of the plain call, of the refinement alone (``report.json``'s ``timings_s.refine``) and
their ratio; the share of views registered; and, from one extra profiled call per view count, where the
refinement's time goes (SIFT, matching, registration, bundle adjustment). Past 32 views matching is linear
in the views (each view against the anchors and its index neighbours), which the 64- and 128-view points
show. Accuracy is not measured here: that is the procedural suite's job (``bench.eval --refine``).

With ``--quality RESULTS_JSON`` (an ``onepass eval --refine`` run) the section also gets the accuracy of
that run: AUC@30 of the forward pass and of the refined cameras per view count, the share of views
registered, and AUC@30 per scene kind.

Run: ``python -m bench.refine [--views 4,8,16,32,64,128] [--scenes 3] [--threads 1] [--quality F]``; writes
the ``## Camera refinement`` section of docs/BENCHMARKS.md and docs/bench/refine_cost.png (``--no-write``:
print only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

from bench._report import ROOT, cpu_name, read_section, write_section

HEADING = "## Camera refinement"
FIG = ROOT / "docs" / "bench" / "refine_cost.png"
STAGES = {
    "extract_features": "SIFT",
    "match_descriptors": "matching",
    "estimate_and_refine_absolute_pose": "PnP",
    "_tracks": "tracks",
    "_bundle_adjust": "bundle adjustment",
}


def _scene_images(seed: int, views: int) -> list:
    import numpy as np

    from models.data.procedural import KINDS, make_scene

    scene = make_scene(seed, views=views, width=224, height=224, kind=KINDS[seed % len(KINDS)])
    return [np.clip(np.round(im * 255.0), 0, 255).astype(np.uint8) for im in scene.images]


def _profile_stages(reconstructor, images: list) -> dict[str, float]:
    """Seconds per refinement stage of one refined call (cumulative times from cProfile)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    reconstructor.reconstruct(images, refine=True)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    out = dict.fromkeys(STAGES.values(), 0.0)
    for (_, _, name), (_, _, _, cumulative, _) in stats.items():
        for key, label in STAGES.items():  # Python functions by name, pycolmap's as "<built-in method …>"
            if name == key or name.endswith(f".{key}>"):
                out[label] += cumulative
    return out


def measure(views: list[int], scenes: int) -> list[dict]:
    from models.reconstruct import Reconstructor

    reconstructor = Reconstructor("tiny", device="cpu")
    reconstructor.reconstruct(_scene_images(0, 2), refine=True)  # warm-up: imports, first-call costs
    rows = []
    for v in views:
        plain, refine, registered = [], [], []
        for seed in range(scenes):
            images = _scene_images(seed, v)
            t0 = time.perf_counter()
            reconstructor.reconstruct(images)
            plain.append(time.perf_counter() - t0)
            recon = reconstructor.reconstruct(images, refine=True)
            refine.append(recon.report["timings_s"]["refine"])
            registered.append(len(recon.report["refinement"]["refined_views"]) / (v - 1))
        stages = _profile_stages(reconstructor, _scene_images(0, v))
        row = {
            "views": v,
            "plain_s": statistics.median(plain),
            "refine_s": statistics.median(refine),
            "registered": statistics.mean(registered),
            "stages": stages,
        }
        rows.append(row)
        print(
            f"{v} views: plain {row['plain_s']:.2f} s, refine {row['refine_s']:.2f} s, "
            f"registered {row['registered']:.2f}",
            flush=True,
        )
    return rows


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    views = [r["views"] for r in rows]
    ax.plot(views, [r["plain_s"] for r in rows], "o-", label="reconstruct, no refinement")
    ax.plot(views, [r["refine_s"] for r in rows], "o-", label="refinement alone")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("input views (224×224)")
    ax.set_ylabel("seconds (median, one thread)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    FIG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIG)
    plt.close(fig)


def render(rows: list[dict], args: argparse.Namespace, load: tuple[float, float]) -> str:
    lines = [HEADING, ""]
    lines.append(
        f"Command: `python -m bench.refine --views {','.join(map(str, args.views))} --scenes {args.scenes} "
        f"--threads {args.threads}` ({dt.date.today().isoformat()}). Machine: {cpu_name()}, 2 cores, "
        f"{args.threads} torch thread; 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at "
        "the end. Built-in `tiny` weights, procedural scenes (seeds 0…, kinds in turn), each reconstructed "
        "with and without `refine=True` back to back; medians over the scenes. Accuracy: "
        + ('"Accuracy" below.' if args.quality else '"Procedural suite" above (`--quality` adds it here).')
    )
    lines += ["", "| views | reconstruct s | refinement s | ratio | views registered | "
              + " | ".join(STAGES.values()) + " |"]  # fmt: skip
    lines.append("|---:|---:|---:|---:|---:|" + "---:|" * len(STAGES))
    for r in rows:
        stages = " | ".join(f"{r['stages'][name]:.2f}" for name in STAGES.values())
        lines.append(
            f"| {r['views']} | {r['plain_s']:.2f} | {r['refine_s']:.2f} | {r['refine_s'] / r['plain_s']:.2f} "
            f"| {r['registered']:.2f} | {stages} |"
        )
    lines += [
        "",
        "Stage columns: seconds inside each step of one profiled refined call of the first scene "
        "(cumulative, so they need not add up to the refinement's total).",
        "",
        "![refinement cost](bench/refine_cost.png)",
        "",
    ]
    return "\n".join(lines) + "\n"


def _change(before: dict, after: dict, key: str, digits: int) -> str:
    """``"0.148 → 0.126"``: one metric of two aggregated rows."""
    return f"{before[key]:.{digits}f} → {after[key]:.{digits}f}"


def render_quality(results_json: str) -> str:
    """Markdown for the accuracy of an ``onepass eval --refine`` run (its ``results.json``): per view
    count, AUC@30 of the forward pass and of the refined cameras, registered share and PSNR; depth, point
    and novel-view metrics before and after; then AUC@30 per scene kind and view count."""
    import json

    from models.eval.report import aggregate

    doc = json.loads(open(results_json).read())
    rows = [r for r in doc["rows"] if r.get("suite") == "procedural"]
    refined = [r for r in rows if r["method"] == "onepass+refine"]
    if not refined:
        raise ValueError(f"{results_json}: no 'onepass+refine' rows (run onepass eval with --refine)")
    cfg = doc["meta"]["config"]
    views = sorted({r["views"] for r in refined})
    cell = {(a["method"], a["views"]): a for a in aggregate(rows)}
    kind_cell = {(a["kind"], a["method"], a["views"]): a for a in aggregate(rows, by_kind=True)}
    registered = {
        v: statistics.mean(r["refined_fraction"] for r in refined if r["views"] == v) for v in views
    }
    step = doc["meta"].get("weights", {}).get("metadata", {}).get("step", "?")
    lines = [
        "### Accuracy",
        "",
        f"Command: `onepass eval --suite procedural --scenes {cfg['scenes']} --views "
        f"{','.join(map(str, views))} --refine{' --given-cameras' if cfg.get('given_cameras') else ''} "
        "--no-colmap --threads 1 --out DIR`, then "
        f"`python -m bench.refine --quality DIR/results.json`. Weights: built-in, step {step}. Seeds "
        f"{cfg['seed_offset']}–{cfg['seed_offset'] + cfg['scenes'] - 1} (never used in training), 224×224. "
        "Views refined: the share of views other than the reference that registered and were moved.",
        "",
        "| views | AUC@30 forward pass | AUC@30 refined | RRA@15 → | RTA@15 → | views refined | PSNR → dB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in views:
        a, b = cell[("onepass", v)], cell[("onepass+refine", v)]
        lines.append(
            f"| {v} | {a['auc30']:.3f} | **{b['auc30']:.3f}** | {_change(a, b, 'rra15', 2)} | "
            f"{_change(a, b, 'rta15', 2)} | {registered[v]:.2f} | {_change(a, b, 'psnr', 2)} |"
        )
    lines += [
        "",
        "Depth, points and novel views, forward pass → refined (refinement also corrects each depth map "
        "with a smooth factor fitted to the bundle-adjusted points; AbsRel per view after median scaling, "
        "and after one Sim(3) for the scene; Chamfer in units of the scene's size):",
        "",
        "| views | AbsRel | AbsRel Sim3 | Chamfer | PSNR dB | SSIM |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    metrics = (("abs_rel_median", 3), ("abs_rel_global", 3), ("chamfer", 4), ("psnr", 2), ("ssim", 3))
    for v in views:
        a, b = cell[("onepass", v)], cell[("onepass+refine", v)]
        pairs = [_change(a, b, k, d) for k, d in metrics]
        lines.append(f"| {v} | " + " | ".join(pairs) + " |")
    lines += _given_cameras_table(cell, views)
    kinds = sorted({k for k, _, _ in kind_cell})
    lines += ["", "AUC@30 per scene kind, forward pass → refined:", ""]
    lines.append("| views | " + " | ".join(kinds) + " |")
    lines.append("|---:|" + "---:|" * len(kinds))
    for v in views:
        cells = []
        for k in kinds:
            pair = [kind_cell.get((k, m, v)) for m in ("onepass", "onepass+refine")]
            cells.append(f"{pair[0]['auc30']:.3f} → {pair[1]['auc30']:.3f}" if all(pair) else "–")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _given_cameras_table(cell: dict, views: list[int]) -> list[str]:
    """Lines for runs given the true cameras (``--given-cameras``), if the results have them: depth as
    the camera-centre fit leaves it → fitted to matches triangulated with the cameras."""
    pairs = [(v, cell.get(("onepass+cameras", v)), cell.get(("onepass+cameras+refine", v))) for v in views]
    pairs = [(v, a, b) for v, a, b in pairs if a and b]
    if not pairs:
        return []
    lines = [
        "",
        "With the true intrinsics and poses given (`--given-cameras`): the forward pass with depth brought "
        "into the cameras' units by one similarity fitted to the camera centres → with `refine`, each depth "
        "map fitted to SIFT matches triangulated with the given cameras (`models/pose_depth.py`). "
        "'As given' = no rescaling at all: the error of the depth in the caller's own units.",
        "",
        "| views | AbsRel as given | δ<1.25 as given | AbsRel | AbsRel Sim3 | Chamfer | PSNR dB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    metrics = (
        ("abs_rel_given", 3), ("delta1_given", 3), ("abs_rel_median", 3), ("abs_rel_global", 3),
        ("chamfer", 4), ("psnr", 2),
    )  # fmt: skip
    for v, a, b in pairs:
        lines.append(f"| {v} | " + " | ".join(_change(a, b, k, d) for k, d in metrics) + " |")
    return lines


def _current_section() -> str:
    """The ``## Camera refinement`` section as docs/BENCHMARKS.md has it now (error if it has none)."""
    section = read_section(HEADING)
    if section is None:
        raise SystemExit(f"BENCHMARKS.md has no {HEADING!r} section: run bench.refine without --quality-only")
    return section


def _with_quality(section: str, quality: str) -> str:
    """``section`` with its accuracy part (from ``### Accuracy`` on) replaced by ``quality``."""
    head = section.split("\n### Accuracy", 1)[0]
    return head.rstrip("\n") + "\n\n" + quality


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=lambda t: [int(v) for v in t.split(",")], default=[4, 8, 16, 32, 64, 128])
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quality", metavar="RESULTS_JSON", help="an `onepass eval --refine` results.json")
    ap.add_argument(
        "--quality-only",
        action="store_true",
        help="with --quality: replace only the accuracy part of the section, keep the measured costs",
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.quality_only:
        if not args.quality:
            ap.error("--quality-only needs --quality RESULTS_JSON")
        text = _with_quality(_current_section(), render_quality(args.quality))
        print(text)
        if not args.no_write:
            write_section(HEADING, text)
        return 0
    if args.scenes < 1 or min(args.views) < 2:
        ap.error("--scenes must be >= 1 and every --views count >= 2")
    torch.set_num_threads(args.threads)
    start = os.getloadavg()[0]
    rows = measure(args.views, args.scenes)
    text = render(rows, args, (start, os.getloadavg()[0]))
    if args.quality:
        text = _with_quality(text, render_quality(args.quality))
    plot(rows)
    print(text)
    if not args.no_write:
        write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
