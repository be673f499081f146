"""bfloat16 autocast on the CPU (``--cpu-bf16``) against float32: training steps, inference time, accuracy.

* **Training**: two trainers warm-start from the same weights at the same global step with the same seed,
  so step ``i`` of both sees the same batch (views, size, scene). Their steps alternate (fp32, bf16, …), so
  both see the same machine load. Reported: median seconds per step (whole step, and without rendering the
  batch), their ratio, and how far the bf16 losses are from the fp32 ones: at step 1 (same weights, same
  batch: the pure rounding effect) and over the run (the weights drift apart as updates differ).
* **Inference**: ``Reconstructor.reconstruct`` on procedural scenes of 4, 8 and 32 views, the two precisions
  interleaved call by call; medians.
* **Accuracy**: two ``onepass eval`` results (``--eval-fp32 DIR --eval-bf16 DIR``, the same scenes, one run
  with ``--cpu-bf16``), side by side.

Run: ``python -m bench.precision [--weights FILE] [--steps 40] [--reps 7] [--views 4,8,32]
[--eval-fp32 DIR --eval-bf16 DIR]``;
writes the ``## bfloat16 on the CPU`` section of ``docs/BENCHMARKS.md`` (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench._report import ROOT, cpu_name, write_section

DEFAULT_WEIGHTS = ROOT / "models" / "weights" / "onepass-tiny.safetensors"
HEADING = "## bfloat16 on the CPU"
INFER_VIEWS = (4, 8, 32)
ACCURACY_KEYS = (
    ("auc30", "AUC@30", ".3f"), ("rot_err_median_deg", "rot. err. °", ".1f"),
    ("trans_err_median_deg", "transl. err. °", ".1f"), ("abs_rel_median", "AbsRel", ".4f"),
    ("delta1_median", "δ<1.25", ".4f"), ("chamfer", "Chamfer", ".4f"), ("psnr", "PSNR dB", ".2f"),
)  # fmt: skip


def _trainer(out: Path, weights: Path, cpu_bf16: bool):
    from models.checkpoint import read_metadata
    from models.training.config import TrainConfig
    from models.training.loop import Trainer

    step = int(read_metadata(weights).get("step", 0))
    config = TrainConfig(
        init_weights=str(weights), init_step=step, val_every_s=0, checkpoint_every_s=1e9, cpu_bf16=cpu_bf16
    )
    return Trainer(out, config)


def measure_training(weights: Path, steps: int) -> dict[str, list[dict]]:
    """Alternate ``steps`` steps of an fp32 and a bf16 trainer; the log rows of each."""
    from tqdm import tqdm

    rows: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            "fp32": _trainer(Path(tmp) / "fp32", weights, False),
            "bf16": _trainer(Path(tmp) / "bf16", weights, True),
        }
        for _ in tqdm(range(steps), desc="training steps (fp32 + bf16)"):
            for name, trainer in trainers.items():
                rows[name].append(trainer.train_step())
    return rows


def summarize_training(rows: dict[str, list[dict]]) -> dict[str, float]:
    """Medians per precision, their ratios and the loss gaps (skipping step 1's one-off warm-up time)."""

    def med(name: str, key) -> float:
        return statistics.median(key(r) for r in rows[name][1:])

    whole = {n: med(n, lambda r: r["step_s"]) for n in rows}
    model = {n: med(n, lambda r: r["step_s"] - r["data_s"]) for n in rows}
    pairs = list(zip(rows["fp32"], rows["bf16"], strict=True))
    rel = [abs(b["total"] - a["total"]) / abs(a["total"]) for a, b in pairs]
    return {
        "steps": len(pairs),
        "fp32_step_s": whole["fp32"], "bf16_step_s": whole["bf16"],
        "fp32_model_s": model["fp32"], "bf16_model_s": model["bf16"],
        "speedup_step": whole["fp32"] / whole["bf16"], "speedup_model": model["fp32"] / model["bf16"],
        "first_loss_fp32": pairs[0][0]["total"], "first_loss_bf16": pairs[0][1]["total"],
        "first_rel_gap": rel[0], "median_rel_gap": statistics.median(rel),
        "mean_loss_fp32": statistics.fmean(a["total"] for a, _ in pairs),
        "mean_loss_bf16": statistics.fmean(b["total"] for _, b in pairs),
    }  # fmt: skip


def measure_inference(
    weights: Path, reps: int, views_list: tuple[int, ...] = INFER_VIEWS
) -> dict[int, dict[str, float]]:
    """Median seconds of ``Reconstructor.reconstruct`` per view count and precision (interleaved calls;
    the first call of each is a warm-up and not counted)."""
    from tqdm import tqdm

    from models import Reconstructor
    from models.eval.suite import _uint8, procedural_ground_truth

    rec = Reconstructor("tiny", weights=str(weights), device="cpu")
    out: dict[int, dict[str, float]] = {}
    for views in tqdm(views_list, desc="inference (fp32 + bf16)"):
        images = _uint8(procedural_ground_truth(7, views, 224, 0).images)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(reps + 1):
            for name in times:
                rec.model.cpu_bf16 = name == "bf16"
                t0 = time.perf_counter()
                rec.reconstruct(images, max_anchors=8)
                times[name].append(time.perf_counter() - t0)
        out[views] = {name: statistics.median(t[1:]) for name, t in times.items()}
    rec.model.cpu_bf16 = False
    return out


def _eval_summary(folder: Path) -> dict[tuple[str, int], dict]:
    data = json.loads((folder / "results.json").read_text())
    return {(r["suite"], r["views"]): r for r in data["summary"] if r["method"] == "onepass"}


def accuracy_rows(fp32_dir: Path, bf16_dir: Path) -> list[str]:
    """Markdown rows: each (suite, views) of the two eval results, float32 line then bf16 line."""
    a, b = _eval_summary(fp32_dir), _eval_summary(bf16_dir)
    head = "| suite | views | scenes | precision | " + " | ".join(k[1] for k in ACCURACY_KEYS) + " |"
    rows = [head, "|---|---:|---:|---|" + "---:|" * len(ACCURACY_KEYS)]
    for key in sorted(a.keys() & b.keys()):
        for name, summary in (("float32", a[key]), ("bf16", b[key])):
            cells = [f"{summary[k]:{fmt}}" if k in summary else "–" for k, _, fmt in ACCURACY_KEYS]
            rows.append(f"| {key[0]} | {key[1]} | {summary['scenes']} | {name} | " + " | ".join(cells) + " |")
    return rows


def section(
    train: dict[str, float] | None,
    infer: dict[int, dict[str, float]] | None,
    accuracy: list[str] | None,
    *,
    command: str,
    weights: Path,
    threads: int,
    native: bool,
) -> str:
    today = dt.date.today().isoformat()
    shown = weights.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights
    parts = [
        HEADING,
        f"Command: `{command}` ({today}). Machine: {cpu_name()}, {threads} torch thread(s), native bf16: "
        f"{'yes' if native else 'no (emulated)'}. Weights: `{shown}`. `--cpu-bf16` autocasts the trunk and "
        "the dense heads (the heads' convolutions are most of a CPU step); the camera head, the "
        "activations, the losses, the optimizer and the master weights stay float32, and training's "
        "validation runs in float32.",
    ]
    if train is not None:
        s = train
        parts += [
            "### Training step",
            "Two trainers warm-started from the weights at their step with the same seed, so step *i* of "
            "both trains on the same batch (the curriculum's mix of 2–16 views and image sizes); their steps "
            f"alternate, so both see the same load. Medians over steps 2–{s['steps']}.",
            "\n".join([
                "| | float32 | bf16 autocast (`--cpu-bf16`) | speed-up |",
                "|---|---:|---:|---:|",
                f"| seconds per step | {s['fp32_step_s']:.2f} | {s['bf16_step_s']:.2f} | "
                f"**{s['speedup_step']:.2f}×** |",
                f"| … without rendering the batch | {s['fp32_model_s']:.2f} | {s['bf16_model_s']:.2f} | "
                f"{s['speedup_model']:.2f}× |",
                f"| mean total loss over the run | {s['mean_loss_fp32']:.4f} | {s['mean_loss_bf16']:.4f} | |",
            ]),
            f"Rounding: at step 1 (same weights, same batch) the total loss is {s['first_loss_fp32']:.5f} in "
            f"float32 and {s['first_loss_bf16']:.5f} with bf16 ({100 * s['first_rel_gap']:.2f} % apart); "
            f"over the run the median gap is {100 * s['median_rel_gap']:.2f} % (the weights drift apart as "
            "the updates differ). The rest of a step is mostly the float64 CPU rasterizer of the rendering "
            "loss, which bf16 does not touch.",
        ]  # fmt: skip
    if infer is not None:
        rows = ["| views | float32 s | bf16 s | speed-up |", "|---:|---:|---:|---:|"]
        for views, t in infer.items():
            rows.append(f"| {views} | {t['fp32']:.3f} | {t['bf16']:.3f} | **{t['fp32'] / t['bf16']:.2f}×** |")
        parts += [
            "### Inference",
            "`Reconstructor.reconstruct` (8 anchors) on one procedural scene per view count, 224×224, the "
            "two precisions interleaved call by call; medians after one warm-up call each.",
            "\n".join(rows),
        ]
    if accuracy is not None:
        parts += [
            "### Accuracy",
            "The same scenes scored by `onepass eval` once in float32 and once with `--cpu-bf16` (procedural "
            "seeds 0–9 and the Motorcycle pair; metrics as in the procedural-suite table below).",
            "\n".join(accuracy),
        ]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    import sys

    import torch

    from models.runtime import cpu_bf16_native

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="weights (default: the built-in)")
    ap.add_argument("--steps", type=int, default=40, help="training steps per precision (0: skip)")
    ap.add_argument("--reps", type=int, default=7, help="inference calls per precision and size (0: skip)")
    ap.add_argument("--views", default="4,8,32", help="inference view counts (default 4,8,32)")
    ap.add_argument("--eval-fp32", type=Path, default=None, help="onepass eval output folder, float32")
    ap.add_argument("--eval-bf16", type=Path, default=None, help="the same eval with --cpu-bf16")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    if args.steps and args.steps < 3:
        ap.error("--steps must be 0 or >= 3")
    if (args.eval_fp32 is None) != (args.eval_bf16 is None):
        ap.error("--eval-fp32 and --eval-bf16 go together")
    torch.set_num_threads(args.threads)
    train = summarize_training(measure_training(args.weights, args.steps)) if args.steps else None
    views = tuple(int(v) for v in args.views.split(","))
    infer = measure_inference(args.weights, args.reps, views) if args.reps else None
    accuracy = accuracy_rows(args.eval_fp32, args.eval_bf16) if args.eval_fp32 else None
    command = "python -m bench.precision " + " ".join(argv if argv is not None else sys.argv[1:])
    text = section(
        train, infer, accuracy, command=command.strip(), weights=args.weights.resolve(),
        threads=args.threads, native=cpu_bf16_native(),
    )  # fmt: skip
    print(text)
    if not args.no_write:
        write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
