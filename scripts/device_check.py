"""The CUDA checks this project cannot run on its CPU-only machines, as one short script for a GPU lease.

Run it on a CUDA machine from the repository root with a PyTorch that sees the GPU; it needs only torch,
numpy, Pillow and safetensors (no ``pip install -e .``):

    PYTHONUNBUFFERED=1 python3 scripts/device_check.py --out $OUT/device_check.json

Each check is independent (a failure is recorded and the next one runs) and prints one line:

1. ``auto_device``: ``device="auto"`` picks CUDA; the built-in ``tiny`` model lands there.
2. ``tiny_autocast_vs_cpu``: ``tiny`` on the GPU (trunk in bf16/fp16 autocast, heads in fp32) against
   the same weights in fp32 on the CPU, on one 4-view procedural scene: depth and pose differences.
3. ``vggt1b_bf16_vs_fp32``: ``vggt-1b`` with seeded random weights, bf16 autocast against fp32 on the GPU
   (2 views, 294×518): per-output relative error, seconds per forward, peak memory.
4. ``batching``: ``Reconstructor.reconstruct_batch`` seconds per scene at 1, 4 and 16 scenes per call
   (4-view 224×224): the gain the service's batcher exists for, not measurable on a CPU.
5. ``zpressor_64``: 64 views with 8 anchors against every view an anchor: seconds and peak GPU memory
   (the issue-4 ratios, measured on the device they are meant for).
6. ``gsplat``: when ``gsplat`` imports (carry its wheel; it compiles its kernels on first use), the
   gsplat backend against onepass's own rasterizer on one scene.

``--device cpu --small`` runs the same code on a CPU at toy sizes (how the script itself is tested).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int = 3) -> tuple[Any, float]:
    """``fn()`` once to warm up, then the median wall seconds of ``repeats`` calls."""
    out = fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def _peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _scene(views: int, size: int, seed: int = 0) -> list[np.ndarray]:
    from models.data.procedural import make_scene

    images = make_scene(seed, views=views, width=size, height=size).images
    return [np.clip(np.round(im * 255.0), 0, 255).astype(np.uint8) for im in images]


def check_auto_device(device: torch.device, small: bool) -> dict:
    from models.build import load_model, resolve_device

    auto = resolve_device("auto")
    model = load_model("tiny", device="auto")
    where = next(model.parameters()).device
    return {"auto": str(auto), "tiny_on": str(where), "ok": auto.type == device.type == where.type}


def check_tiny_autocast(device: torch.device, small: bool) -> dict:
    from models.reconstruct import Reconstructor

    images = _scene(4, 224)
    gpu = Reconstructor(preset="tiny", device=str(device)).reconstruct(images)
    cpu = Reconstructor(preset="tiny", device="cpu").reconstruct(images)
    valid = cpu.valid & (cpu.depth > 0)
    rel = np.abs(gpu.depth - cpu.depth)[valid] / cpu.depth[valid]
    return {
        "depth_rel_diff_median": float(np.median(rel)),
        "depth_rel_diff_p99": float(np.percentile(rel, 99)),
        "world_to_camera_max_abs_diff": float(np.abs(gpu.world_to_camera - cpu.world_to_camera).max()),
        "gaussians_gpu_cpu": [len(gpu.gaussians), len(cpu.gaussians)],
        "gpu_report_device": gpu.report["device"],
    }


def check_vggt1b_bf16(device: torch.device, small: bool) -> dict:
    from models.build import build_model
    from models.config import VGGT_1B

    model = build_model(VGGT_1B).to(device).eval()
    hw = (28, 42) if small else (294, 518)
    images = torch.rand(1, 2, 3, *hw, generator=torch.Generator().manual_seed(0)).to(device)
    results: dict[str, Any] = {"images": [2, 3, *hw]}
    outs = {}
    for name, amp in (("fp32", False), ("amp", True)):
        model.amp = amp
        _reset_peak(device)
        with torch.inference_mode():
            out, seconds = _timed(lambda: model(images), device, repeats=1 if small else 3)
        outs[name] = {k: v.float() for k, v in out.items() if k in ("pose_enc", "depth", "world_points")}
        results[f"{name}_seconds"] = seconds
        results[f"{name}_peak_mib"] = _peak_mib(device)
    for k, ref in outs["fp32"].items():
        diff = (outs["amp"][k] - ref).abs().max() / ref.abs().max().clamp_min(1e-12)
        results[f"{k}_rel_max"] = float(diff)
    return results


def check_batching(device: torch.device, small: bool) -> dict:
    from models.reconstruct import ReconstructionInput, Reconstructor

    rec = Reconstructor(preset="tiny", device=str(device))
    scenes = [_scene(4, 224, seed) for seed in range(4)]
    per_scene = {}
    for b in (1, 4) if small else (1, 4, 16):
        batch = [ReconstructionInput(scenes[i % len(scenes)], max_anchors=8) for i in range(b)]
        _, seconds = _timed(lambda batch=batch: rec.reconstruct_batch(batch), device)
        per_scene[b] = seconds / b
    top = max(per_scene)
    return {"seconds_per_scene": per_scene, "gain_at_largest": per_scene[1] / per_scene[top]}


def check_zpressor(device: torch.device, small: bool) -> dict:
    from models.reconstruct import Reconstructor

    views = 12 if small else 64
    rec = Reconstructor(preset="tiny", device=str(device))
    images = torch.rand(views, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    row = {}
    for name, anchors in (("full", views), ("zpressor", 8)):
        _reset_peak(device)
        out, seconds = _timed(lambda anchors=anchors: rec.reconstruct(images, max_anchors=anchors), device)
        peak = _peak_mib(device)
        row[name] = {"seconds": seconds, "peak_mib": peak, "compression": out.report["compression"]}
    row["time_ratio"] = row["zpressor"]["seconds"] / row["full"]["seconds"]
    if device.type == "cuda":
        row["memory_ratio"] = row["zpressor"]["peak_mib"] / row["full"]["peak_mib"]
    return row


def check_gsplat(device: torch.device, small: bool) -> dict:
    if device.type != "cuda":
        return {"skipped": "gsplat renders on CUDA only"}
    try:
        import gsplat  # noqa: F401
    except ImportError as e:
        return {"skipped": f"gsplat is not importable here ({e}); carry its wheel to run this check"}
    from renderer import render_gaussians
    from renderer.types import Gaussians

    g = torch.Generator().manual_seed(0)
    n = 20_000
    gauss = Gaussians(
        means=torch.randn(n, 3, generator=g) * 0.5 + torch.tensor([0.0, 0.0, 3.0]),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        scales=torch.rand(n, 3, generator=g) * 0.03 + 0.005,
        opacities=torch.rand(n, generator=g),
        sh=torch.rand(n, 1, 3, generator=g),
    )
    K = torch.tensor([[[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]]])
    w2c = torch.eye(4)[None]
    images = {}
    for backend, dev in (("cpu", torch.device("cpu")), ("gsplat", device)):
        res = render_gaussians(gauss.to(dev), w2c.to(dev), K.to(dev), 320, 240, backend=backend)
        images[backend] = res.rgb.float().cpu()
    diff = (images["gsplat"] - images["cpu"]).abs()
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}


CHECKS: dict[str, Callable[[torch.device, bool], dict]] = {
    "auto_device": check_auto_device,
    "tiny_autocast_vs_cpu": check_tiny_autocast,
    "vggt1b_bf16_vs_fp32": check_vggt1b_bf16,
    "batching": check_batching,
    "zpressor_64": check_zpressor,
    "gsplat": check_gsplat,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (the point) or cpu (to test the script)")
    ap.add_argument("--small", action="store_true", help="toy sizes (for a CPU run of the script)")
    ap.add_argument("--only", nargs="+", choices=sorted(CHECKS), help="run these checks only")
    ap.add_argument("--out", default="device_check.json", help="JSON results")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("device_check: CUDA is not available here; use --device cpu --small to test the script")
        return 2
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "checks": {},
    }
    failed = 0
    for name in args.only or list(CHECKS):
        t0 = time.perf_counter()
        try:
            result = CHECKS[name](device, args.small)
            status = "ok"
        except Exception as e:  # noqa: BLE001 - record it and go on to the next check
            result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
            status = "FAILED"
            failed += 1
        result["seconds"] = round(time.perf_counter() - t0, 1)
        report["checks"][name] = result
        brief = {k: v for k, v in result.items() if k != "traceback"}
        print(f"{name}: {status} {json.dumps(brief, default=str)[:600]}", flush=True)
        Path(args.out).write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
