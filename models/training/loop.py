"""The trainer: batches on the fly, AdamW + warmup/cosine + grad clip, checkpoints, CSV log, loss curve.

A run lives in one folder::

    OUT/last.pt          latest checkpoint (model, optimizer, scheduler, RNG, step, elapsed time, config)
    OUT/log.csv          one row per step: losses, learning rate, gradient norm, batch shape, seconds
    OUT/val.csv          held-out validation metrics every ``val_every_s`` (see ``models.training.validate``)
    OUT/snapshots/step_NNNNNNN.safetensors
                         the model weights at each validation (weights only, ~22 MB for ``tiny``): the
                         candidates the benchmark picks from, since ``last.pt`` moves on
    OUT/loss_curve.png   the learning curve, redrawn at every checkpoint
    OUT/config.json      the run's TrainConfig and model preset (for people; the checkpoint is authoritative)

A new run may warm-start from an earlier run's shipped weights (``TrainConfig.init_weights``): it begins at
that run's step (``init_step``, so the curriculum and schedule carry on) with a fresh optimizer whose rate
is re-warmed over ``rewarm_steps``. That is how a run continues when its ``last.pt`` is gone.

``Trainer(out, config)`` refuses a folder that already holds a checkpoint unless ``resume=True``; with
``resume=True`` it continues from ``last.pt`` exactly: the same step plans, optimizer moments, schedule and
RNG state, so ``N`` steps straight equal ``N/2`` + resume + ``N/2`` bit for bit (on the same machine and
thread count). Log rows past the checkpoint (written after it, before an interruption) are dropped.
SIGTERM and Ctrl-C stop the run after the current step and write a final checkpoint.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from models.build import build_model
from models.config import ModelConfig, get_config
from models.training.checkpoint import (
    CheckpointError,
    capture_rng,
    check_compatible,
    load_checkpoint,
    model_fingerprint,
    restore_rng,
    save_checkpoint,
)
from models.training.config import TrainConfig
from models.training.curriculum import StepPlan, step_plan
from models.training.plot import plot_loss_curve
from models.training.prefetch import BatchSource
from models.training.schedule import make_scheduler
from models.training.step import compute_losses
from models.training.validate import VAL_COLUMNS, validate

__all__ = [
    "Trainer",
    "TrainSummary",
    "LOG_COLUMNS",
    "AnnealError",
    "build_optimizer",
    "export_weights",
    "with_anneal",
]

CHECKPOINT_NAME = "last.pt"
LOG_NAME = "log.csv"
CURVE_NAME = "loss_curve.png"
LOG_COLUMNS = (
    "step", "elapsed_s", "step_s", "data_s", "lr", "grad_norm", "batch", "views", "height", "width",
    "max_anchors", "total", "loss_camera", "loss_T", "loss_R", "loss_FL", "loss_depth_total",
    "loss_depth_reg", "loss_points_total", "loss_points_reg", "loss_render_total", "loss_render_mse",
    "loss_Tdir",
)  # fmt: skip
#: Give up after this many consecutive non-finite losses (one is skipped, a stream means divergence).
MAX_BAD_STEPS = 20


@dataclass
class TrainSummary:
    steps_done: int  # in this call
    step: int  # global step reached
    elapsed_s: float  # training seconds over the whole run (all sessions)
    last_loss: float
    checkpoint: Path


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices/kernels only (not on norms, biases, tokens, LayerScale)."""
    decay, no_decay = [], []
    for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if p.requires_grad:
            (decay if p.dim() >= 2 and p.shape[0] > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


class AnnealError(ValueError):
    """An anneal that cannot be set up (bad length, a different one already running, nothing left)."""


def with_anneal(config: TrainConfig, start: int, steps: int) -> TrainConfig:
    """``config`` ending in an anneal of ``steps`` steps from global step ``start``.

    A config that already anneals keeps its own start (resuming an anneal must not move it) and must ask
    for the same length.
    """
    if steps < 1:
        raise AnnealError(f"anneal steps must be >= 1, got {steps}")
    if config.anneal_start is not None:
        if config.anneal_steps != steps:
            raise AnnealError(
                f"this run already anneals over {config.anneal_steps} steps from step {config.anneal_start}; "
                f"resume it without a new anneal length (asked: {steps})"
            )
        return config
    if start >= config.total_steps:
        raise AnnealError(
            f"the run is at step {start}, past its total_steps ({config.total_steps}): nothing to anneal"
        )
    return replace(config, anneal_start=start, anneal_steps=steps)


class Trainer:
    """Train ``config.preset`` (or an explicit ``model_config``) into ``out_dir`` (see the module doc)."""

    def __init__(
        self,
        out_dir: str | Path,
        config: TrainConfig | None = None,
        *,
        model_config: ModelConfig | None = None,
        resume: bool = False,
        data_workers: int = 0,
        anneal_steps: int | None = None,
        direction_weight: float | None = None,
        sign_invariant_rotation: bool | None = None,
        cpu_bf16: bool | None = None,
    ) -> None:
        """``anneal_steps``: end the run with a linear decay of the rate to zero over that many steps from
        where it stands now (its checkpoint's step, or ``init_step`` for a new run); see
        :mod:`models.training.schedule`. A run that already anneals resumes with its own setting.
        ``direction_weight``: set the camera loss's translation-direction weight
        (``LossWeights.camera_direction``) from here on; it is stored with the run, so later resumes keep
        it. None keeps the run's own. ``sign_invariant_rotation``: likewise for
        ``LossWeights.sign_invariant_rotation``. ``cpu_bf16``: likewise for ``TrainConfig.cpu_bf16``
        (bfloat16 autocast on the CPU)."""
        self.out = Path(out_dir)
        ckpt_path = self.out / CHECKPOINT_NAME
        data = None
        if resume:
            data = load_checkpoint(ckpt_path)
            config = TrainConfig.from_dict(data["train_config"])
        elif ckpt_path.exists():
            raise CheckpointError(
                f"{ckpt_path} already exists; pass resume=True (--resume) to continue it, "
                "or choose another --out"
            )
        self.config = config or TrainConfig()
        if anneal_steps is not None:
            start = int(data["step"]) if data is not None else self.config.init_step
            self.config = with_anneal(self.config, start, anneal_steps)
        if direction_weight is not None and direction_weight < 0:
            raise ValueError(f"direction_weight must be >= 0, got {direction_weight}")
        loss_options = {
            "camera_direction": direction_weight,
            "sign_invariant_rotation": sign_invariant_rotation,
        }
        overrides = {k: v for k, v in loss_options.items() if v is not None}
        if overrides:
            self.config = replace(self.config, weights=replace(self.config.weights, **overrides))
        if cpu_bf16 is not None:
            self.config = replace(self.config, cpu_bf16=cpu_bf16)
        self.model_config = model_config or get_config(self.config.preset)
        if self.model_config.gaussian_head is None and self.config.weights.render > 0:
            raise ValueError(f"preset {self.model_config.name!r} has no Gaussian head; set weights.render=0")
        torch.manual_seed(self.config.seed)
        self.model = build_model(self.model_config, seed=self.config.seed)  # the model's own initialisation
        self.model.train()
        self.model.cpu_bf16 = self.config.cpu_bf16
        self.model.aggregator.gradient_checkpointing = self.config.gradient_checkpointing
        self.optimizer = build_optimizer(self.model, self.config)
        warm = self.config.init_weights is not None
        self.scheduler = make_scheduler(
            self.optimizer,
            warmup_steps=self.config.warmup_steps,
            total_steps=self.config.total_steps,
            min_ratio=self.config.min_lr_ratio,
            start_step=self.config.init_step,
            rewarm_steps=self.config.rewarm_steps if warm else 0,
            anneal_start=self.config.anneal_start,
            anneal_steps=self.config.anneal_steps,
        )
        self.step = self.config.init_step
        self.elapsed_s = 0.0
        if warm and data is None:
            self.elapsed_s = self._warm_start(self.config.init_weights)
        self.batches = BatchSource(self.plan, data_workers)
        if data is not None:
            check_compatible(data, ckpt_path, self.model_config.name, self.model)
            self.model.load_state_dict(data["model"])
            self.optimizer.load_state_dict(data["optimizer"])
            self.scheduler.load_state_dict(data["scheduler"])
            restore_rng(data["rng"])
            self.step = int(data["step"])
            self.elapsed_s = float(data.get("elapsed_s", 0.0))
            self._truncate_log(self.step)

    def _warm_start(self, path: str) -> float:
        """Load an earlier run's weights strictly; returns its training seconds (so hours keep adding up)."""
        from models.checkpoint import CheckpointMismatchError, compare_state_dict, read_state_dict

        try:
            sd, _, meta = read_state_dict(path)
            missing, unexpected, mismatched = compare_state_dict(self.model, sd)
            if missing or unexpected or mismatched:
                raise CheckpointMismatchError(path, missing, unexpected, mismatched)
        except (FileNotFoundError, ValueError) as e:
            raise CheckpointError(f"init weights: {e}") from e
        with torch.no_grad():  # copy into the existing parameters (the optimizer holds them)
            self.model.load_state_dict(sd, strict=True)
        try:
            return 3600.0 * float(meta.get("train_hours", 0.0))
        except ValueError:
            return 0.0

    # ------------------------------------------------------------------------------------------ files
    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.out / LOG_NAME

    def _last_validation_elapsed(self) -> float:
        """Training seconds at the last ``val.csv`` row (0 without one): validation follows training time,
        so interruptions neither skip nor repeat it."""
        path = self.out / "val.csv"
        if not path.exists():
            return 0.0
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= self.step]
        return float(rows[-1]["elapsed_s"]) if rows else 0.0

    def run_validation(self) -> dict[str, float]:
        """Score held-out scenes now, append a row to ``val.csv`` and keep the weights as a snapshot."""
        self.model.cpu_bf16 = False  # validation scores are float32 whatever the training precision
        try:
            res = validate(self.model, views=self.config.val_views)
        finally:
            self.model.cpu_bf16 = self.config.cpu_bf16
        row = {"step": self.step, "elapsed_s": round(self.elapsed_s, 1), **res}
        self.save_snapshot()
        path = self.out / "val.csv"
        new = not path.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=VAL_COLUMNS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        return row

    def save_snapshot(self) -> Path:
        """Write the current weights to ``snapshots/step_NNNNNNN.safetensors`` (what ``--export`` would
        write from a checkpoint at this step), so a validated step can be shipped after training moved on."""
        from models.checkpoint import save_weights

        path = self.out / "snapshots" / f"step_{self.step:07d}.safetensors"
        meta = weights_metadata(self.model_config.name, self.step, self.elapsed_s)
        return save_weights(self.model, path, metadata=meta)

    def _truncate_log(self, step: int) -> None:
        """Drop log and validation rows written after the checkpoint being resumed."""
        if self.log_path.exists():
            with self.log_path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
            self._write_log(rows, mode="w")
        val = self.out / "val.csv"
        if val.exists():
            with val.open(newline="") as f:
                reader = csv.DictReader(f)
                fields, rows = (
                    reader.fieldnames or list(VAL_COLUMNS),
                    [r for r in reader if int(r["step"]) <= step],
                )
            with val.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields)
                w.writeheader()
                w.writerows(rows)

    def _write_log(self, rows: list[dict], mode: str = "a") -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        new = mode == "w" or not self.log_path.exists()
        with self.log_path.open(mode if not new else "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_COLUMNS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerows(rows)

    def save(self) -> Path:
        """Write ``last.pt`` atomically, then redraw the loss curve."""
        payload = {
            "preset": self.model_config.name,
            "model_fingerprint": model_fingerprint(self.model),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "train_config": self.config.to_dict(),
            "rng": capture_rng(),
        }
        path = save_checkpoint(self.checkpoint_path, payload)
        info = {"preset": self.model_config.name, "step": self.step, "elapsed_s": round(self.elapsed_s, 1)}
        info["train_config"] = self.config.to_dict()
        (self.out / "config.json").write_text(json.dumps(info, indent=2, default=list) + "\n")
        if self.log_path.exists():
            plot_loss_curve(self.log_path, self.out / CURVE_NAME)
        return path

    # ------------------------------------------------------------------------------------------ steps
    def plan(self, step: int) -> StepPlan:
        return step_plan(self.config.stages, step, self.config.seed, self.model_config.patch_size)

    def train_step(self) -> dict[str, float]:
        """One optimizer step at ``self.step``; returns the log row (losses as floats)."""
        t0 = time.perf_counter()
        plan = self.plan(self.step)
        batch = self.batches.get(self.step)
        t1 = time.perf_counter()
        losses = compute_losses(self.model, batch, plan, self.config.weights)
        total = losses["total"]
        self.optimizer.zero_grad(set_to_none=True)
        lr = self.optimizer.param_groups[0]["lr"]
        if torch.isfinite(total):
            total.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip))
            if math.isfinite(grad_norm):
                self.optimizer.step()
        else:
            grad_norm = float("nan")
        self.scheduler.step()
        self.step += 1
        dt = time.perf_counter() - t0
        self.elapsed_s += dt
        row = {
            "step": self.step, "elapsed_s": round(self.elapsed_s, 3), "step_s": round(dt, 4),
            "data_s": round(t1 - t0, 4), "lr": lr, "grad_norm": grad_norm, "batch": plan.batch,
            "views": plan.views, "height": plan.height, "width": plan.width,
            "max_anchors": plan.max_anchors or "",
        }  # fmt: skip
        row.update({k: float(v.detach()) for k, v in losses.items()})
        return row

    def train(
        self, *, minutes: float | None = None, max_steps: int | None = None, progress: bool = True
    ) -> TrainSummary:
        """Train until ``minutes`` of wall time pass, ``max_steps`` more steps are done, or the run's last
        step (``TrainConfig.end_step``) is reached; checkpoint every ``checkpoint_every_s`` and at the end."""
        from tqdm import tqdm

        if minutes is not None and minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {minutes}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        start = time.monotonic()
        deadline = None if minutes is None else start + 60.0 * minutes
        last_ckpt = start
        last_val = self._last_validation_elapsed()
        stop = {"requested": False}

        def request_stop(signum, frame) -> None:  # finish the current step, then checkpoint and return
            stop["requested"] = True

        previous = {}
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        end_step = (
            self.config.end_step if max_steps is None else min(self.config.end_step, self.step + max_steps)
        )
        done, bad, rows, last_loss, finished = 0, 0, [], float("nan"), False
        bar = tqdm(total=end_step, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True)
        try:
            while (
                self.step < end_step
                and not stop["requested"]
                and (deadline is None or time.monotonic() < deadline)
            ):
                row = self.train_step()
                done += 1
                rows.append(row)
                last_loss = row["total"]
                bad = bad + 1 if not math.isfinite(last_loss) else 0
                if bad >= MAX_BAD_STEPS:
                    raise FloatingPointError(
                        f"{bad} consecutive non-finite losses at step {self.step}: diverged"
                    )
                bar.update(1)
                bar.set_postfix(
                    loss=f"{last_loss:.3f}", cam=f"{row['loss_camera']:.3f}", s=f"{row['step_s']:.2f}"
                )
                if self.config.val_every_s > 0 and self.elapsed_s - last_val >= self.config.val_every_s:
                    last_val = self.elapsed_s
                    try:
                        val = self.run_validation()
                    except Exception as e:  # an unattended run must not die of a validation failure
                        bar.write(f"validation at step {self.step} failed: {type(e).__name__}: {e}")
                    else:
                        shown = {k: val[k] for k in ("auc30", "abs_rel_median", "psnr")}
                        bar.write(
                            f"validation at step {self.step}: "
                            + ", ".join(f"{k}={v:.3f}" for k, v in shown.items())
                        )
                if time.monotonic() - last_ckpt >= self.config.checkpoint_every_s:
                    self._write_log(rows)
                    rows = []
                    self.save()
                    last_ckpt = time.monotonic()
            finished = True
        finally:
            self.batches.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            bar.close()
            if rows:
                self._write_log(rows)
            if done and finished:  # after an error the last good checkpoint stays (resume trims the log)
                self.save()
        return TrainSummary(done, self.step, self.elapsed_s, last_loss, self.checkpoint_path)


def weights_metadata(preset: str, step: int, elapsed_s: float) -> dict[str, object]:
    """The metadata a shipped weights file carries (exports and validation snapshots alike)."""
    return {
        "preset": preset, "step": step, "train_hours": round(elapsed_s / 3600, 3), "source": "onepass train",
    }  # fmt: skip


def export_weights(
    checkpoint: str | Path,
    out: str | Path,
    *,
    max_bytes: int = 25_000_000,
    model_config: ModelConfig | None = None,
) -> Path:
    """Write a training checkpoint's model weights (only) as float32 ``.safetensors`` for shipping.

    The file carries metadata (preset, step, training hours) and must stay under ``max_bytes``.
    ``model_config`` overrides the preset's architecture (tests use a micro network).
    """
    from models.checkpoint import save_weights

    data = load_checkpoint(checkpoint)
    model = build_model(model_config or data["preset"])
    check_compatible(data, checkpoint, data["preset"], model)
    model.load_state_dict(data["model"])
    meta = weights_metadata(data["preset"], int(data["step"]), float(data.get("elapsed_s", 0.0)))
    path = save_weights(model, out, metadata=meta)
    size = path.stat().st_size
    if size > max_bytes:
        path.unlink()
        raise ValueError(f"exported weights are {size} bytes, above the {max_bytes}-byte limit")
    return path
