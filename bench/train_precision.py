"""Training step time and losses, float32 vs bfloat16 autocast on the CPU, side by side in one process.

Two trainers warm-start from the same weights at the same global step with the same seed, so step ``i`` of
both sees the same batch (views, size, scene). Their steps alternate (fp32, bf16, fp32, …), so both see the
same machine load. Reported: median seconds per step (whole step, and without rendering the batch), their
ratio, and how far the bf16 losses are from the fp32 ones: at step 1 (same weights, same batch: the pure
rounding effect) and over the run (the weights drift apart as updates differ).

Run: ``python -m bench.train_precision [--weights FILE] [--steps 40] [--threads 1]``; writes the
``## Training precision`` section of ``docs/BENCHMARKS.md`` (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
from pathlib import Path

from bench._report import ROOT, cpu_name, write_section

DEFAULT_WEIGHTS = ROOT / "models" / "weights" / "onepass-tiny.safetensors"
HEADING = "## Training precision"


def _trainer(out: Path, weights: Path, cpu_bf16: bool):
    from models.checkpoint import read_metadata
    from models.training.config import TrainConfig
    from models.training.loop import Trainer

    step = int(read_metadata(weights).get("step", 0))
    config = TrainConfig(
        init_weights=str(weights), init_step=step, val_every_s=0, checkpoint_every_s=1e9, cpu_bf16=cpu_bf16
    )
    return Trainer(out, config)


def measure(weights: Path, steps: int) -> dict[str, list[dict]]:
    """Alternate ``steps`` steps of an fp32 and a bf16 trainer; the log rows of each."""
    from tqdm import tqdm

    rows: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            "fp32": _trainer(Path(tmp) / "fp32", weights, False),
            "bf16": _trainer(Path(tmp) / "bf16", weights, True),
        }
        for _ in tqdm(range(steps), desc="steps (fp32 + bf16)"):
            for name, trainer in trainers.items():
                rows[name].append(trainer.train_step())
    return rows


def summarize(rows: dict[str, list[dict]]) -> dict[str, float]:
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


def section(s: dict[str, float], *, weights: Path, threads: int, native: bool) -> str:
    today = dt.date.today().isoformat()
    shown = weights.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights
    header = (
        f"Command: `python -m bench.train_precision --steps {s['steps']} --threads {threads}` ({today}). "
        f"Machine: {cpu_name()}, {threads} torch thread(s), native bf16: "
        f"{'yes' if native else 'no (emulated)'}. Two trainers warm-started from `{shown}` at its step with "
        "the same seed, so step *i* of both trains on the same batch (the curriculum's mix of 2–16 views "
        "and image sizes); their steps alternate, so both see the same load. "
        f"Medians over steps 2–{s['steps']}."
    )
    rows = [
        "| | float32 | bf16 autocast (`--cpu-bf16`) | speed-up |",
        "|---|---:|---:|---:|",
        f"| seconds per step | {s['fp32_step_s']:.2f} | {s['bf16_step_s']:.2f} | "
        f"**{s['speedup_step']:.2f}×** |",
        f"| … without rendering the batch | {s['fp32_model_s']:.2f} | {s['bf16_model_s']:.2f} | "
        f"{s['speedup_model']:.2f}× |",
        f"| mean total loss over the run | {s['mean_loss_fp32']:.4f} | {s['mean_loss_bf16']:.4f} | |",
    ]
    rounding = (
        f"Rounding: at step 1 (same weights, same batch) the total loss is {s['first_loss_fp32']:.5f} in "
        f"float32 and {s['first_loss_bf16']:.5f} with bf16 ({100 * s['first_rel_gap']:.2f} % apart); over "
        f"the run the median gap is {100 * s['median_rel_gap']:.2f} % (the weights drift apart as the "
        "updates differ). `--cpu-bf16` autocasts the trunk and the dense heads (the heads' convolutions are "
        "most of a CPU step); the camera head, the activations, the losses, the optimizer and the master "
        "weights stay float32, and validation runs in float32."
    )
    return "\n\n".join([HEADING, header, "\n".join(rows), rounding]) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    from models.runtime import cpu_bf16_native

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="weights to warm-start both from")
    ap.add_argument("--steps", type=int, default=40, help="steps per precision (default 40)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    if args.steps < 3:
        ap.error("--steps must be >= 3")
    torch.set_num_threads(args.threads)
    summary = summarize(measure(args.weights, args.steps))
    text = section(summary, weights=args.weights.resolve(), threads=args.threads, native=cpu_bf16_native())
    print(text)
    if not args.no_write:
        write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
