"""Aggregate benchmark rows and write ``results.json``, ``results.md`` and plots.

Aggregation per ``(method, views)``: AUC@30 is computed over the *pooled* view pairs of all scenes (as VGGT
pools the pairs of a category); every other metric is the mean over scenes (NaN-aware), runtime is the median.
``aggregate(rows, by_kind=True)`` also splits procedural scenes by generator kind (objects, room, orbit,
forward), whose cameras fail in different ways (wide orbits: rotation; short forward rigs: translation).
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

import numpy as np

from models.eval.camera import PoseErrors, pose_auc

__all__ = ["aggregate", "kind_table", "scene_kind", "write_report", "markdown_table"]

_MEAN_KEYS = (
    "rra15", "rta15", "rot_err_median_deg", "trans_err_median_deg", "abs_rel_median", "delta1_median",
    "abs_rel_global", "delta1_global", "chamfer", "psnr", "ssim", "registration_rate", "anchors",
    "abs_rel_given", "delta1_given",
)  # fmt: skip


def scene_kind(row: dict[str, Any]) -> str | None:
    """The generator kind of a procedural row (its scene is named ``KIND-SEED``); None for other suites."""
    if row.get("suite") != "procedural":
        return None
    kind, _, seed = str(row.get("scene", "")).rpartition("-")
    return kind if kind and seed.isdigit() else None


def aggregate(rows: list[dict[str, Any]], *, by_kind: bool = False) -> list[dict[str, Any]]:
    """One summary dict per ``(suite, method, views)`` in first-seen order; with ``by_kind``, per
    ``(suite, method, views, kind)`` for procedural rows only (each summary then has a ``kind``)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        kind = scene_kind(r) if by_kind else None
        if by_kind and kind is None:
            continue
        groups.setdefault((r.get("suite", ""), r["method"], r["views"], kind), []).append(r)
    out = []
    for (suite, method, views, kind), rs in groups.items():
        agg: dict[str, Any] = {"suite": suite, "method": method, "views": views, "scenes": len(rs)}
        if kind is not None:
            agg["kind"] = kind
        pairs = [np.asarray(r.get("_pair_max_deg", r.get("pair_max_deg"))) for r in rs]
        pairs = [p for p in pairs if p.ndim == 1 and p.size]
        if pairs:
            err = np.concatenate(pairs)
            agg["auc30"] = pose_auc(PoseErrors(err, err), 30)
            agg["auc30_scene_mean"] = float(np.mean([r["auc30"] for r in rs if "auc30" in r]))
        for key in _MEAN_KEYS:
            vals = [float(r[key]) for r in rs if key in r and r[key] is not None]
            vals = [v for v in vals if math.isfinite(v)]
            if vals:
                agg[key] = float(np.mean(vals))
        agg["runtime_s_median"] = float(np.median([r["runtime_s"] for r in rs]))
        out.append(agg)
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


_COLUMNS = (
    ("method", "method", 0), ("views", "views", 0), ("scenes", "scenes", 0), ("auc30", "AUC@30", 3),
    ("rra15", "RRA@15", 3), ("rta15", "RTA@15", 3), ("registration_rate", "registered", 2),
    ("abs_rel_median", "AbsRel (med)", 3), ("delta1_median", "δ<1.25 (med)", 3),
    ("abs_rel_global", "AbsRel (Sim3)", 3), ("delta1_global", "δ<1.25 (Sim3)", 3), ("chamfer", "Chamfer", 3),
    ("psnr", "PSNR", 2), ("ssim", "SSIM", 3), ("runtime_s_median", "time s (median)", 2),
)  # fmt: skip


#: runs given the true cameras: depth also scored in the cameras' units, with no rescaling
_GIVEN_COLUMNS = (
    ("method", "method", 0), ("views", "views", 0), ("scenes", "scenes", 0),
    ("abs_rel_given", "AbsRel (as given)", 3), ("delta1_given", "δ<1.25 (as given)", 3),
    ("abs_rel_median", "AbsRel (med)", 3), ("abs_rel_global", "AbsRel (Sim3)", 3), ("chamfer", "Chamfer", 3),
    ("psnr", "PSNR", 2), ("runtime_s_median", "time s (median)", 2),
)  # fmt: skip


_KIND_COLUMNS = (
    ("kind", "kind", 0), ("method", "method", 0), ("views", "views", 0), ("scenes", "scenes", 0),
    ("auc30", "AUC@30", 3), ("rot_err_median_deg", "rotation err ° (med)", 1),
    ("trans_err_median_deg", "translation dir err ° (med)", 1), ("registration_rate", "registered", 2),
    ("abs_rel_median", "AbsRel (med)", 3), ("psnr", "PSNR", 2),
)  # fmt: skip


def markdown_table(summary: list[dict[str, Any]], columns: tuple = _COLUMNS) -> str:
    """A Markdown table of summaries; ``columns``: (key, title, digits) triples (default: the main table)."""
    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for s in summary:
        lines.append("| " + " | ".join(_fmt(s.get(k), d) for k, _, d in columns) + " |")
    return "\n".join(lines)


def kind_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the procedural rows per generator kind, kinds grouped, then method and views."""
    summary = sorted(aggregate(rows, by_kind=True), key=lambda s: (s["kind"], s["method"], s["views"]))
    return markdown_table(summary, _KIND_COLUMNS)


def _plot(
    summary: list[dict[str, Any]], out: Path, key: str, ylabel: str, name: str, logy: bool = False
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    methods = sorted({s["method"] for s in summary if s.get("suite") == "procedural"})
    for m in methods:
        pts = sorted(
            (s["views"], s[key])
            for s in summary
            if s["method"] == m and key in s and s.get("suite") == "procedural"
        )
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=m)
    ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("input views")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / name)
    plt.close(fig)


def write_report(out_dir: str | Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Path]:
    """Write ``results.json`` (meta, summary, per-scene rows), ``results.md`` and PNG plots; return paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = aggregate(rows)
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    for c, r in zip(clean, rows, strict=True):  # keep pair errors so later runs can re-pool AUC
        if "_pair_max_deg" in r:
            c["pair_max_deg"] = np.round(np.asarray(r["_pair_max_deg"], dtype=float), 3).tolist()
    meta = {
        **meta,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    doc = _finite_or_none({"meta": meta, "summary": summary, "rows": clean})
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    paths["json"].write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
    md = [f"# onepass evaluation ({meta.get('weights', {}).get('source', '?')} weights)", ""]
    md.append("```\n" + json.dumps(meta, indent=1, default=_json_default) + "\n```\n")
    for suite in sorted({s["suite"] for s in summary}):
        md += [f"## {suite}", "", markdown_table([s for s in summary if s["suite"] == suite]), ""]
    given = [s for s in summary if "abs_rel_given" in s]
    if given:
        md += ["## with the true cameras given", "", markdown_table(given, _GIVEN_COLUMNS), ""]
    if any(scene_kind(r) for r in rows):
        md += ["## procedural, by scene kind", "", kind_table(rows), ""]
    paths["markdown"].write_text("\n".join(md))
    if any(s.get("suite") == "procedural" for s in summary):
        for key, label, name, logy in (
            ("auc30", "camera AUC@30", "auc_vs_views.png", False),
            ("abs_rel_median", "depth AbsRel (median scaling)", "absrel_vs_views.png", False),
            ("psnr", "novel-view PSNR (dB)", "psnr_vs_views.png", False),
            ("runtime_s_median", "seconds per scene (median)", "runtime_vs_views.png", True),
        ):
            _plot(summary, out, key, label, name, logy)
            paths[name] = out / name
    return paths


def _finite_or_none(o: Any) -> Any:
    """JSON has no NaN/Infinity: non-finite floats become ``null``."""
    if isinstance(o, dict):
        return {k: _finite_or_none(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite_or_none(v) for v in o]
    if isinstance(o, float | np.floating):
        return float(o) if math.isfinite(o) else None
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
