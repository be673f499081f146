"""Novel-view ceiling: what pixel-aligned Gaussians reach on the procedural suite with *exact* geometry.

The suite scores novel views at 2 target cameras per scene drawn independently from the scene's rig, so a
target can look at surfaces that no input view saw (the far side of an orbit's object, behind a room's
furniture). No method that places Gaussians on the input pixels can render those. This script measures how
much that bounds PSNR: for every scene, Gaussians are built from the *true* depth and cameras of the input
views with the training-free path of :func:`models.gaussians.pixel_gaussians` (one isotropic Gaussian per
pixel, a pixel's footprint wide, opaque; the background, which has no depth, placed at 3× the farthest
surface) and rendered at the true target cameras, then scored exactly as the suite scores a model
(:func:`models.eval.scoring.score_reconstruction`). It also measures **holes**, the share of target pixels
that no input pixel lands on (alpha < 0.5: mostly sky in directions no input looked at), and **surface
coverage**, the share of target pixels on a surface that some input view saw (the input Gaussians,
background left out, render there with alpha > 0.5 at a depth within 5 % of the target's true depth).

It is a ceiling for geometry, not for appearance: a learned Gaussian head can place, size and colour its
Gaussians better than one opaque disc per pixel (the trained model beats this on the kinds it registers
well), but it cannot see what no input saw.

Run: ``python -m bench.psnr_ceiling [--scenes 50] [--views 2,4,8,16] [--compare RESULTS_JSON] [--no-write]``;
``--compare`` adds the PSNR of the ``onepass`` (and ``onepass+refine``) rows of an ``onepass eval`` run on
the same seeds. Writes the ``## Novel-view ceiling`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from bench._report import cpu_name, write_section

SECTION = "## Novel-view ceiling"
#: background (no true depth) is placed this many times farther than the farthest true surface
BACKGROUND_FACTOR = 3.0
#: a target pixel counts as seen when the input Gaussians render there within this relative depth
SEEN_DEPTH_TOLERANCE = 0.05


def exact_gaussians(depth: np.ndarray, valid: np.ndarray, images: np.ndarray, K: np.ndarray, w2c: np.ndarray,
                    background: bool = True) -> Any:  # fmt: skip
    """Training-free Gaussians of the input views from true depth; ``background``: invalid pixels too, at
    :data:`BACKGROUND_FACTOR` × the farthest true depth (else they are left out)."""
    import torch

    from models.gaussians import GaussianOptions, pixel_gaussians

    if background:
        depth = np.where(valid, depth, BACKGROUND_FACTOR * depth[valid].max())
        valid = np.ones_like(valid)
    return pixel_gaussians(
        torch.from_numpy(depth.astype(np.float32)),
        torch.full(depth.shape, 10.0),
        torch.from_numpy(images.astype(np.float32)),
        torch.from_numpy(K).float(),
        torch.from_numpy(w2c).float(),
        torch.from_numpy(valid),
        options=GaussianOptions(drop_fraction=0.0, scale_factor=1.0),
    )


def scene_ceiling(seed: int, views: int, size: int = 224, targets: int = 2) -> dict[str, Any]:
    """PSNR/SSIM of exact-geometry Gaussians at the suite's target views of one scene, and coverage."""
    import torch

    from models.eval.scoring import gt_world_points, score_reconstruction
    from models.eval.suite import procedural_scene_ground_truth
    from renderer import render_gaussians

    gt, _, tg = procedural_scene_ground_truth(seed, views, size, targets)
    g = exact_gaussians(gt.depth, gt.valid, gt.images, gt.K, gt.world_to_camera)
    exact = SimpleNamespace(
        num_views=gt.num_views, world_to_camera=gt.world_to_camera, K=gt.K, K_model=gt.K, depth=gt.depth,
        valid=np.ones_like(gt.valid), world_points=np.nan_to_num(gt_world_points(gt)), gaussians=g,
    )  # fmt: skip
    scores = score_reconstruction(exact, gt)
    with torch.no_grad():  # holes: target pixels that no input pixel (background included) lands on
        full = render_gaussians(
            g, torch.from_numpy(gt.target_world_to_camera).float(), torch.from_numpy(gt.target_K).float(),
            size, size,
        )  # fmt: skip
    holes = float((full.alpha.numpy() < 0.5).mean())
    # coverage: where the input views' surfaces (no background) land in the targets, at the right depth
    surfaces = exact_gaussians(gt.depth, gt.valid, gt.images, gt.K, gt.world_to_camera, background=False)
    with torch.no_grad():
        res = render_gaussians(
            surfaces, torch.from_numpy(tg.world_to_camera).float(), torch.from_numpy(tg.K).float(), size, size
        )
    alpha, depth = res.alpha.numpy(), res.depth.numpy()
    target_depth, target_valid = np.asarray(tg.depth), np.asarray(tg.valid)
    seen = (alpha > 0.5) & (np.abs(depth - target_depth) <= SEEN_DEPTH_TOLERANCE * target_depth)
    coverage = float(seen[target_valid].mean()) if target_valid.any() else float("nan")
    return {
        "seed": seed, "scene": gt.name, "kind": gt.name.rsplit("-", 1)[0], "views": views,
        "psnr": scores["psnr"], "ssim": scores["ssim"], "coverage": coverage, "holes": holes,
    }  # fmt: skip


def _model_psnr(results_json: str) -> dict[tuple[str, int, str], float]:
    """Mean PSNR per (method, views, kind or 'all') of the procedural ``onepass*`` rows of an eval run."""
    doc = json.loads(open(results_json).read())
    groups: dict[tuple[str, int, str], list[float]] = {}
    for r in doc["rows"]:
        if r.get("suite") != "procedural" or r["method"] not in ("onepass", "onepass+refine"):
            continue
        if r.get("psnr") is None:
            continue
        kind = r["scene"].rsplit("-", 1)[0]
        for key in ((r["method"], r["views"], "all"), (r["method"], r["views"], kind)):
            groups.setdefault(key, []).append(float(r["psnr"]))
    return {k: float(np.mean(v)) for k, v in groups.items()}


def render_section(rows: list[dict], args: argparse.Namespace, seconds: float) -> str:
    views = sorted({r["views"] for r in rows})
    kinds = sorted({r["kind"] for r in rows})
    model = _model_psnr(args.compare) if args.compare else {}
    methods = [m for m in ("onepass", "onepass+refine") if any(k[0] == m for k in model)]
    compare = f" --compare {args.compare}" if args.compare else ""
    lines = [
        SECTION,
        "",
        f"Command: `python -m bench.psnr_ceiling --scenes {args.scenes} --views {','.join(map(str, views))}"
        f"{compare}` ({time.strftime('%Y-%m-%d')}, {seconds:.0f} s). Machine: {cpu_name()}. "
        f"Seeds 0–{args.scenes - 1} (the suite's), 224×224, the suite's 2 target views per scene.",
        "",
        "Pixel-aligned Gaussians from the **true** depth and cameras of the input views (training-free: one "
        "opaque disc per pixel; background at 3× the farthest surface), rendered at the true target cameras "
        "and scored as the suite scores a model. Holes = share of target pixels that no input pixel lands on "
        "(rendered as the black background: mostly sky that no input looked at); surface coverage = share of "
        "target pixels on a surface that some input view saw. This bounds what any method that puts "
        "Gaussians on the input pixels can render from the same inputs; a learned head can do somewhat "
        "better on appearance, not on what no input saw.",
        "",
        "| views | PSNR dB | SSIM | holes | surface coverage | "
        + " | ".join(f"{m} PSNR" for m in methods)
        + " |",
        "|---:|---:|---:|---:|---:|" + "---:|" * len(methods),
    ]
    for v in views:
        sel = [r for r in rows if r["views"] == v]
        cells = [
            f"{np.mean([r[k] for r in sel]):.{d}f}"
            for k, d in (("psnr", 2), ("ssim", 3), ("holes", 3), ("coverage", 3))
        ]
        cells += [f"{model[(m, v, 'all')]:.2f}" if (m, v, "all") in model else "–" for m in methods]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines += ["", "By scene kind (PSNR dB / holes):", "", "| views | " + " | ".join(kinds) + " |"]
    lines.append("|---:|" + "---:|" * len(kinds))
    for v in views:
        cells = []
        for k in kinds:
            sel = [r for r in rows if r["views"] == v and r["kind"] == k]
            cell = f"{np.mean([r['psnr'] for r in sel]):.2f} / {np.mean([r['holes'] for r in sel]):.2f}"
            cells.append(cell)
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch
    from tqdm import tqdm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=50)
    ap.add_argument("--views", type=lambda t: [int(v) for v in t.split(",")], default=[2, 4, 8, 16])
    ap.add_argument("--compare", metavar="RESULTS_JSON", help="an `onepass eval` results.json, same seeds")
    ap.add_argument("--no-write", action="store_true", help="print the section only")
    args = ap.parse_args(argv)
    if args.scenes < 1 or min(args.views) < 1:
        raise SystemExit("--scenes and --views must be >= 1")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    jobs = [(v, s) for v in args.views for s in range(args.scenes)]
    rows = [scene_ceiling(s, v) for v, s in tqdm(jobs, desc="ceiling", unit="scene")]
    text = render_section(rows, args, time.perf_counter() - t0)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
