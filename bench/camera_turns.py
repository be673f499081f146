"""Camera diagnosis: how a model's rotation error grows with how far a view is turned from view 0.

For ``orbit`` scenes (cameras around an object, arcs of 90°–360°) of the procedural generator, every
non-first view's rotation relative to view 0 is compared with the truth and binned by the true turn angle.
It tells apart "cannot resolve large turns" (the predicted turn stays near one value whatever the truth)
from "wrong everywhere". Seeds default to 100–299, away from the benchmark's 0–49 and never trained on.

Run: ``python -m bench.camera_turns WEIGHTS [WEIGHTS …] [--scenes 24] [--views 4] [--kind orbit]``;
prints a Markdown table (one block of rows per weights file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

BINS = ((0, 60), (60, 120), (120, 150), (150, 181))


def _angle_deg(R: np.ndarray) -> float:
    """Rotation angle of a 3×3 rotation matrix, in degrees (the pose metric's own geodesic angle)."""
    from models.eval.camera import _rotation_angle_deg

    return float(_rotation_angle_deg(R[None], np.eye(3)[None])[0])


def turn_rows(weights: str, seeds: list[int], views: int) -> np.ndarray:
    """``[N, 3]``: (true turn from view 0, predicted turn, rotation error) for every non-first view."""
    import torch

    from models import Reconstructor
    from models.eval.suite import _uint8, procedural_ground_truth

    torch.set_num_threads(1)
    rec = Reconstructor("tiny", weights=weights, device="cpu")
    rows = []
    for seed in seeds:
        gt = procedural_ground_truth(seed, views, 224, 0)
        pred, true = rec.reconstruct(_uint8(gt.images), max_anchors=8).world_to_camera, gt.world_to_camera
        for i in range(1, views):
            rel_pred = pred[i, :3, :3] @ pred[0, :3, :3].T
            rel_true = true[i, :3, :3] @ true[0, :3, :3].T
            rows.append((_angle_deg(rel_true), _angle_deg(rel_pred), _angle_deg(rel_pred @ rel_true.T)))
    return np.asarray(rows)


def main(argv: list[str] | None = None) -> int:
    from models.data.procedural import KINDS, kind_for_seed

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="+", help=".safetensors files of the tiny preset")
    ap.add_argument("--scenes", type=int, default=24)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--kind", default="orbit", choices=KINDS)
    ap.add_argument("--first-seed", type=int, default=100)
    args = ap.parse_args(argv)
    if args.views < 2 or args.scenes < 1:
        raise SystemExit("--views must be >= 2 and --scenes >= 1")
    seeds = [s for s in range(args.first_seed, args.first_seed + 400) if kind_for_seed(s) == args.kind]
    seeds = seeds[: args.scenes]
    print(f"{args.kind} scenes, seeds {seeds[0]}–{seeds[-1]} ({len(seeds)}), {args.views} views, 224×224\n")
    print("| weights | true turn from view 0 | views | median rotation error ° | median predicted turn ° |")
    print("|---|---|---:|---:|---:|")
    for w in args.weights:
        rows = turn_rows(w, seeds, args.views)
        for lo, hi in BINS:
            m = (rows[:, 0] >= lo) & (rows[:, 0] < hi)
            if m.any():
                print(
                    f"| {Path(w).name} | {lo}–{min(hi, 180)}° | {int(m.sum())} | {np.median(rows[m, 2]):.1f} "
                    f"| {np.median(rows[m, 1]):.1f} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
