"""Training and evaluation benchmark → the ``## Training and evaluation`` section of docs/BENCHMARKS.md.

1. **Learning curve** of a training run (default ``runs/tiny-main``): loss curve and held-out validation
   metrics against training step → docs/bench/train_loss.png, docs/bench/train_val.png.
2. **Procedural suite** (``models.eval.suite``; seeds ``0…scenes−1``, never used in training) for the trained
   weights, the same network with random weights, and the COLMAP peer, side by side; plus ZPressor vs full
   attention at view counts above 8 → docs/bench/eval_*.png.
3. **Motorcycle** (Middlebury 2014 pair from scikit-image) for the same three.

Per-scene JSON goes to ``runs/eval/bench-*`` (git-ignored). COLMAP does not depend on weights, so a previous
COLMAP run can be reused with ``--colmap-json`` (any ``results.json`` written by ``onepass eval``).

Run: ``python -m bench.eval [--scenes 10] [--weights W] [--colmap-json F] [--run runs/tiny-main]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import ROOT, cpu_name, write_section

FIG = ROOT / "docs" / "bench"
SECTION = "## Training and evaluation"


def _plot_run(run: Path) -> dict[str, Any]:
    """Learning-curve figures from ``run``; returns a summary of the run (steps, hours, validation rows)."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.training.plot import plot_loss_curve, read_log

    info: dict[str, Any] = {"run": str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run)}
    log = run / "log.csv"
    if not log.is_file():
        return info
    cols = read_log(log)
    info["steps"] = int(cols["step"][-1])
    info["first_step"] = int(cols["step"][0])
    info["hours"] = float(cols["elapsed_s"][-1]) / 3600
    info["median_step_s"] = float(np.median(cols["step_s"][-500:]))
    plot_loss_curve(log, FIG / "train_loss.png")
    val = run / "val.csv"
    if val.is_file():
        with val.open(newline="") as f:
            rows = [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]
        info["val"] = rows
        if rows:
            fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), dpi=110)
            steps = [r["step"] for r in rows]
            for ax, key, label in zip(
                axes,
                ("auc30", "abs_rel_median", "psnr"),
                ("AUC@30 (4 views)", "depth AbsRel", "PSNR dB"),
                strict=True,
            ):
                ax.plot(steps, [r.get(key, np.nan) for r in rows], "o-")
                ax.set_xlabel("step")
                ax.set_title(label)
                ax.grid(alpha=0.3)
            fig.suptitle("held-out validation (8 scenes, seeds 900000-900007, 224 px)")
            fig.tight_layout()
            fig.savefig(FIG / "train_val.png")
            plt.close(fig)
    return info


def _suite_rows(
    reconstructor: Any, scenes: int, views: tuple[int, ...], colmap: bool, refine: bool = False
) -> list[dict]:
    from models.eval.suite import SuiteConfig, run_motorcycle, run_procedural_suite

    cfg = SuiteConfig(
        scenes=scenes, views=views, colmap=colmap, full_attention_scenes=min(5, scenes), refine=refine
    )
    rows = [r | {"suite": "procedural"} for r in run_procedural_suite(reconstructor, cfg)]
    rows += [r | {"suite": "motorcycle"} for r in run_motorcycle(reconstructor, colmap=colmap, refine=refine)]
    return rows


#: how a row's method shows in the label of the weights that made it
_METHOD_SUFFIX = {"onepass": "", "onepass-full": "-full", "onepass+refine": "+refine"}


def _label(weights_label: str, row: dict) -> str:
    return f"onepass-{weights_label}{_METHOD_SUFFIX[row['method']]}"


def _load_rows(path: Path, fingerprint: str) -> tuple[list[dict], dict]:
    """Rows and meta of an earlier ``results.json`` (rows keep ``pair_max_deg``, so AUC is re-pooled
    exactly). Refuses results rendered by different generator code."""
    doc = json.loads(path.read_text())
    theirs = doc["meta"].get("generator_fingerprint")
    if theirs != fingerprint:
        raise SystemExit(f"{path}: generator fingerprint {theirs} != current {fingerprint}; re-run it")
    # rows of runs given the true cameras (``--given-cameras``) belong to "Camera refinement", not here
    rows = [r for r in doc["rows"] if r["method"] in _METHOD_SUFFIX or r["method"] == "colmap"]
    return rows, doc["meta"]


def _fmt(v: Any, d: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.{d}f}" if isinstance(v, float) else str(v)


def _table(summary: list[dict], suite: str) -> list[str]:
    cols = (
        ("label", "method", 0), ("views", "views", 0), ("scenes", "scenes", 0), ("auc30", "AUC@30", 3),
        ("rra15", "RRA@15", 3), ("rta15", "RTA@15", 3), ("registration_rate", "registered", 2),
        ("abs_rel_median", "AbsRel med", 3), ("delta1_median", "δ1 med", 3),
        ("abs_rel_global", "AbsRel Sim3", 3), ("chamfer", "Chamfer", 3), ("psnr", "PSNR", 2),
        ("ssim", "SSIM", 3), ("runtime_s_median", "s/scene", 2),
    )  # fmt: skip
    out = ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for s in sorted((s for s in summary if s["suite"] == suite), key=lambda s: (s["views"], s["label"])):
        out.append("| " + " | ".join(_fmt(s.get(k), d) for k, _, d in cols) + " |")
    return out


def _plot_suite(summary: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), dpi=110)
    labels = sorted({s["label"] for s in summary if s["suite"] == "procedural"})
    colour = {label: f"C{i}" for i, label in enumerate(labels)}  # one colour per method in every panel
    for ax, key, title in zip(
        axes,
        ("auc30", "abs_rel_median", "runtime_s_median"),
        ("camera AUC@30", "depth AbsRel (median)", "s/scene"),
        strict=True,
    ):
        for label in labels:
            pts = sorted(
                (s["views"], s[key])
                for s in summary
                if s["label"] == label and s["suite"] == "procedural" and key in s
            )
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label, color=colour[label])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("input views")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if key == "runtime_s_median":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIG / "eval_procedural.png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import torch

    from models.eval.report import aggregate, write_report
    from models.eval.suite import generator_fingerprint
    from models.eval.weights import load_eval_model
    from models.reconstruct import Reconstructor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--views", type=lambda t: tuple(int(v) for v in t.split(",")), default=(2, 4, 8, 16, 32))
    ap.add_argument("--weights", default=None, help="trained weights (default: the built-in file)")
    ap.add_argument(
        "--run", default=str(ROOT / "runs" / "tiny-main"), help="training run for the learning curve"
    )
    ap.add_argument("--colmap-json", default=None, help="reuse COLMAP rows from an earlier results.json")
    ap.add_argument("--random-json", default=None, help="reuse random-weight rows (runs/eval/bench-random)")
    ap.add_argument(
        "--trained-json", default=None, help="reuse trained-weight rows (runs/eval/bench-trained)"
    )
    ap.add_argument(
        "--refine", action="store_true", help="also score the trained weights with camera refinement"
    )
    ap.add_argument(
        "--refined-json",
        default=None,
        help="reuse 'onepass+refine' rows of the trained weights from an earlier results.json",
    )
    ap.add_argument(
        "--full-json",
        default=None,
        help="an `onepass eval --full-attention-scenes N` results.json: its 'onepass-full' rows, and the "
        "32-view cost ratio from its own paired 'onepass' / 'onepass-full' rows (same run, same scenes)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--no-docs",
        action="store_true",
        help="print the section instead of rewriting it (figures are redrawn)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    FIG.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d")
    run_info = _plot_run(Path(args.run))
    fingerprint = generator_fingerprint()

    all_rows: list[dict] = []
    methods = {}
    for label, weights in (("trained", args.weights), ("random", "random")):
        reuse = {"random": args.random_json, "trained": args.trained_json}[label]
        if reuse:
            rows, meta = _load_rows(Path(reuse), fingerprint)
            methods[label] = meta["weights"]
            for r in rows:
                r["label"] = _label(label, r)
            all_rows += rows
            continue
        model, info = load_eval_model("tiny", weights)
        if label == "trained" and info.get("source") == "random":
            print("bench.eval: no trained weights found; the 'trained' column is skipped")
            continue
        methods[label] = info
        t0 = time.perf_counter()
        refine = args.refine and label == "trained" and not args.refined_json
        rows = _suite_rows(Reconstructor("tiny", model=model), args.scenes, args.views, False, refine)
        for r in rows:
            r["label"] = _label(label, r)
        all_rows += rows
        meta = {"weights": info, "scenes": args.scenes, "generator_fingerprint": fingerprint}
        write_report(ROOT / "runs" / "eval" / f"bench-{label}", rows, meta)
        print(f"bench.eval: {label} done in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.refined_json:
        loaded = _load_rows(Path(args.refined_json), fingerprint)[0]
        rows = [r for r in loaded if r["method"] == "onepass+refine"]
        if not rows:
            raise SystemExit(f"{args.refined_json}: no 'onepass+refine' rows")
        all_rows += [r | {"label": _label("trained", r)} for r in rows]
    paired_ratio = None
    if args.full_json:
        loaded = _load_rows(Path(args.full_json), fingerprint)[0]
        full = [r for r in loaded if r["method"] == "onepass-full"]
        if not full:
            raise SystemExit(f"{args.full_json}: no 'onepass-full' rows")
        all_rows = [r for r in all_rows if r["label"] != _label("trained", {"method": "onepass-full"})]
        all_rows += [r | {"label": _label("trained", r)} for r in full]
        paired_ratio = _paired_cost_ratio(loaded, 32)
    if args.colmap_json:
        colmap_rows = [
            r for r in _load_rows(Path(args.colmap_json), fingerprint)[0] if r["method"] == "colmap"
        ]
    else:
        colmap_rows = _suite_rows(None, args.scenes, args.views, colmap=True)
        meta = {"weights": {"source": "colmap"}, "generator_fingerprint": fingerprint}
        write_report(ROOT / "runs" / "eval" / "bench-colmap", colmap_rows, meta)
    for r in colmap_rows:
        r["label"] = "colmap"
    all_rows += colmap_rows

    summary = []
    for label in sorted({r["label"] for r in all_rows}):
        for s in aggregate([r for r in all_rows if r["label"] == label]):
            summary.append(s | {"label": label})
    _plot_suite(summary)
    args.fingerprint = fingerprint
    text = render_section(summary, run_info, methods, args, started, _kind_table(all_rows), paired_ratio)
    print(text)
    if not args.no_docs:
        write_section(SECTION, text)
    return 0


def _paired_cost_ratio(rows: list[dict], views: int) -> float | None:
    """Median over scenes of ``onepass`` / ``onepass-full`` runtime at ``views`` views, from rows of one
    run (both modes timed on the same scene, one after the other)."""
    full = {r["scene"]: r["runtime_s"] for r in rows if r["method"] == "onepass-full" and r["views"] == views}
    pairs = [r["runtime_s"] / full[r["scene"]] for r in rows
             if r["method"] == "onepass" and r["views"] == views and r["scene"] in full]  # fmt: skip
    return float(np.median(pairs)) if pairs else None


def _targets(summary: list[dict], paired_ratio: float | None = None) -> list[str]:
    def get(label: str, views: int, key: str) -> float | None:
        for s in summary:
            if s["suite"] == "procedural" and s["label"] == label and s["views"] == views:
                return s.get(key)
        return None

    lines = []
    auc4, col4 = get("onepass-trained", 4, "auc30"), get("colmap", 4, "auc30")
    absrel4, psnr4 = get("onepass-trained", 4, "abs_rel_median"), get("onepass-trained", 4, "psnr")
    auc8, auc32 = get("onepass-trained", 8, "auc30"), get("onepass-trained", 32, "auc30")
    t32, t32full = (
        get("onepass-trained", 32, "runtime_s_median"),
        get("onepass-trained-full", 32, "runtime_s_median"),
    )

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("**met**" if ok else "not met")

    ok = None if auc4 is None or col4 is None else (auc4 >= 0.80 and auc4 > col4)
    lines.append(
        f"- 4 views AUC@30 ≥ 0.80 and above COLMAP: {_fmt(auc4)} vs COLMAP {_fmt(col4)} → {verdict(ok)}"
    )
    ref4 = get("onepass-trained+refine", 4, "auc30")
    if ref4 is not None:
        ok = None if col4 is None else (ref4 >= 0.80 and ref4 > col4)
        lines.append(
            f"  - with camera refinement (`refine=True`: the forward pass, then SIFT + PnP + bundle "
            f"adjustment): {_fmt(ref4)} vs COLMAP {_fmt(col4)} → {verdict(ok)}"
        )
    lines.append(
        f"- 4 views depth AbsRel ≤ 0.10: {_fmt(absrel4)} → "
        f"{verdict(None if absrel4 is None else absrel4 <= 0.10)}"
    )
    lines.append(
        f"- 4 views novel-view PSNR ≥ 22 dB: {_fmt(psnr4, 2)} → "
        f"{verdict(None if psnr4 is None else psnr4 >= 22)}"
    )
    ok = None if auc8 is None or auc32 is None else abs(auc32 - auc8) <= 0.05
    lines.append(
        f"- 32 views (8 anchors) AUC@30 within 0.05 of 8 views: {_fmt(auc32)} vs {_fmt(auc8)} → {verdict(ok)}"
    )
    ratio = None if not t32 or not t32full else t32 / t32full
    how = "of the full-attention time"
    if paired_ratio is not None:  # the same scenes timed in both modes in one run: the fair comparison
        ratio, how = (
            paired_ratio,
            "of the full-attention time (median of per-scene ratios, both modes in one run)",
        )
    lines.append(
        f"- 32 views cost ≤ 1/5 of full attention: {_fmt(ratio, 2)} {how} "
        f"→ {verdict(None if ratio is None else ratio <= 0.2)}"
    )
    return lines


def _kind_table(all_rows: list[dict], views: int = 4) -> list[str]:
    """Markdown lines: the trained model (with and without camera refinement) and COLMAP at ``views`` views,
    per procedural scene kind."""
    from models.eval.report import kind_table

    rows = [
        r | {"method": r["label"]}
        for r in all_rows
        if r["label"] in ("onepass-trained", "onepass-trained+refine", "colmap") and r["views"] == views
    ]
    if not any(r.get("suite") == "procedural" for r in rows):
        return []
    return [
        f"By scene kind, {views} views (AUC pooled per kind; errors are per-scene medians, averaged):",
        "",
        kind_table(rows),
    ]


def _describe(info: dict) -> str:
    meta = info.get("metadata") or {}
    if info.get("source") == "random":
        return "seeded random initialisation"
    where = info.get("path", "?")
    step = meta.get("step", info.get("step", "?"))
    hours = meta.get("train_hours", info.get("train_hours", "?"))
    shipped = ROOT / "models" / "weights" / "onepass-tiny.safetensors"
    path = ROOT / where if not Path(where).is_absolute() else Path(where)
    if path.is_relative_to(ROOT):  # name files in the repository as the repository does
        where = str(path.relative_to(ROOT))
    same = path.is_file() and shipped.is_file() and _sha256(path) == _sha256(shipped)
    return (
        f"`{where}`"
        + (", shipped as `models/weights/onepass-tiny.safetensors`" if same and path != shipped else "")
        + f" (step {step}, {hours} training hours)"
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_section(
    summary: list[dict],
    run: dict,
    methods: dict,
    args: argparse.Namespace,
    date: str,
    kinds: list[str] | None = None,
    paired_ratio: float | None = None,
) -> str:
    """The ``## Training and evaluation`` section; ``kinds``: the per-kind table's lines, if any;
    ``paired_ratio``: the 32-view ZPressor / full-attention cost ratio from paired rows (``--full-json``)."""
    lines = [SECTION, ""]
    lines.append(
        f"Command: `python -m bench.eval --scenes {args.scenes} --views {','.join(map(str, args.views))}"
        f"{' --weights ' + args.weights if args.weights else ''}"
        f"{'' if Path(args.run) == ROOT / 'runs' / 'tiny-main' else ' --run ' + args.run}"
        f"{' --colmap-json ' + args.colmap_json if args.colmap_json else ''}"
        f"{' --random-json ' + args.random_json if args.random_json else ''}"
        f"{' --trained-json ' + args.trained_json if args.trained_json else ''}"
        f"{' --refine' if args.refine and not args.refined_json else ''}"
        f"{' --refined-json ' + args.refined_json if args.refined_json else ''}"
        f"{' --full-json ' + args.full_json if getattr(args, 'full_json', None) else ''}` ({date}). "
        f"Machine: {cpu_name()}, "
        f"2 cores shared with other jobs (and with the background training run), torch {args.threads} thread."
    )
    lines.append("")
    if "steps" in run:
        lines += [
            "### Training run",
            "",
            f"`{run['run']}`: {run['steps']} steps, {run['hours']:.2f} CPU-hours of training (one core), "
            f"median {run['median_step_s']:.2f} s/step over the last 500 steps."
            + (
                f" Its log starts at step {run['first_step']}: the run was warm-started there from shipped "
                "weights (`--init-weights`), and the logs of the steps before it stayed on earlier machines; "
                "docs/MODEL_CARD.md tells the whole history."
                if run.get("first_step", 1) > 1
                else ""
            ),
            "",
            "![loss curve](bench/train_loss.png)",
            "",
        ]
        if run.get("val"):
            lines += [
                "| step | train hours | AUC@30 (4 views) | RRA@15 | RTA@15 | AbsRel | PSNR |",
                "|---|---|---|---|---|---|---|",
            ]
            for r in run["val"]:
                lines.append(
                    f"| {int(r['step'])} | {r['elapsed_s'] / 3600:.2f} | {_fmt(r.get('auc30'))} | "
                    f"{_fmt(r.get('rra15'))} | "
                    f"{_fmt(r.get('rta15'))} | {_fmt(r.get('abs_rel_median'))} | {_fmt(r.get('psnr'), 2)} |"
                )
            lines += ["", "![validation](bench/train_val.png)", ""]
    lines += ["### Procedural suite", ""]
    lines.append(
        f"{args.scenes} scenes per view count (seeds 0–{args.scenes - 1}, kinds objects/room/orbit/forward "
        f"in turn; generator fingerprint `{args.fingerprint}`), "
        "224×224, 2 held-out target views per scene. Weights: "
        + "; ".join(f"{k}: {_describe(v)}" for k, v in methods.items())
        + ". `-full` = every view an anchor (no ZPressor)."
        + (
            " `+refine` = the same forward pass, then camera refinement (`refine=True`, `models/refine.py`: "
            "SIFT matches lifted by the predicted depth, PnP, bundle adjustment with a shared focal length, "
            "then each depth map corrected to the adjusted points: one scale per view before session 11, "
            "a smooth factor since); the depth, Sim(3), Chamfer and PSNR columns use the refined cameras "
            "and corrected depth, and s/scene includes the refinement (one core)."
            if any(s["label"].endswith("+refine") for s in summary)
            else ""
        )
    )
    shipped = ROOT / "models" / "weights" / "onepass-tiny.safetensors"
    if shipped.is_file():
        digest = hashlib.sha256(shipped.read_bytes()).hexdigest()[:16]
        lines.append(f"Shipped `models/weights/onepass-tiny.safetensors`: sha256 `{digest}…`.")
    lines += [""] + _table(summary, "procedural") + ["", "![procedural suite](bench/eval_procedural.png)", ""]
    lines += ["Targets (issue 5):", ""] + _targets(summary, paired_ratio) + [""]
    if kinds:
        lines += kinds + [""]
    lines += ["### Motorcycle (Middlebury 2014, real photos)", ""]
    lines.append(
        "views=2: both images (pose of the pair, left depth, Chamfer of left points); views=1: the left "
        "image alone, its Gaussians rendered at the right camera (PSNR/SSIM)."
    )
    lines += [""] + _table(summary, "motorcycle") + [""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
