"""The learning-curve PNG drawn from a run's ``log.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["read_log", "plot_loss_curve"]

_CURVES = (
    ("total", "total"),
    ("loss_camera", "camera (×5)"),
    ("loss_depth_total", "depth"),
    ("loss_points_total", "points"),
    ("loss_render_total", "render"),
)


def read_log(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of ``log.csv`` as float arrays (blank cells → NaN)."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    out = {}
    for key in rows[0]:
        vals = []
        for r in rows:
            try:
                vals.append(float(r[key]))
            except (TypeError, ValueError):
                vals.append(np.nan)
        out[key] = np.asarray(vals)
    return out


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if y.size < 2 or window <= 1:
        return y
    window = min(window, y.size)
    ok = np.isfinite(y)
    num = np.convolve(np.where(ok, y, 0.0), np.ones(window), mode="valid")
    den = np.convolve(ok.astype(float), np.ones(window), mode="valid")
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def plot_loss_curve(log_path: str | Path, png_path: str | Path) -> Path:
    """Moving-average losses against step (log scale), with training hours on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = read_log(log_path)
    png_path = Path(png_path)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    if log:
        steps = log["step"]
        window = max(1, steps.size // 100)
        for key, label in _CURVES:
            if key in log and np.isfinite(log[key]).any():
                y = _smooth(log[key], window)
                ax.plot(steps[window - 1 :][: y.size], y, label=label, lw=1.2)
        ax.set_yscale("log")
        hours = log.get("elapsed_s", steps * 0) / 3600.0
        ax.set_title(
            f"onepass training: {int(steps[-1])} steps, {hours[-1]:.2f} CPU-hours (moving avg {window})"
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path)
    plt.close(fig)
    return png_path
