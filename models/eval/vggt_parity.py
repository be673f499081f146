"""Parity of onepass's ``vggt-1b`` network with the official VGGT implementation, on identical weights.

The reference code is neither on PyPI nor shipped with onepass (its licence and ownership are its
authors'). Point ``--vggt-src`` at a checkout of github.com/facebookresearch/vggt (the folder that holds
the ``vggt`` package); this module imports it from there, builds both networks on the *same* tensors
(onepass's parameters alias the reference's, so 1.2 B parameters cost 5 GB once, not twice), runs both in
fp32 on the same images and reports, for every output of ``VGGT.forward``, the largest absolute
difference relative to the output's largest magnitude.

Without ``--weights`` the reference's own initialisation is perturbed with seeded Gaussian noise on every
parameter (so zero-initialised pieces such as modulation layers and LayerScale carry signal and a wrong
wiring cannot hide behind a zero); with ``--weights model.pt`` the released checkpoint is used as is.

    python -m models.eval.vggt_parity --vggt-src ~/src/vggt [--weights model.pt] [--views 2]
        [--height 168 --width 224] [--json out.json]

Exit status 0 when every output is within ``--tolerance`` (1e-3, the issue's target), 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: outputs of ``VGGT.forward`` compared (``images`` is the input echoed back; the track head is not run)
COMPARED = ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf")
TRACK_PREFIX = "track_head."


def import_reference(src: str | Path) -> type[nn.Module]:
    """The reference ``VGGT`` class from a checkout at ``src`` (raises ``ImportError`` naming the path)."""
    src = Path(src).expanduser().resolve()
    if not (src / "vggt" / "models" / "vggt.py").is_file():
        raise ImportError(f"--vggt-src {src}: no vggt/models/vggt.py there (expected a VGGT checkout)")
    sys.path.insert(0, str(src))
    try:
        return importlib.import_module("vggt.models.vggt").VGGT
    finally:
        sys.path.remove(str(src))


def build_reference(ref_cls: type[nn.Module], weights: str | None, seed: int, noise: float) -> nn.Module:
    """The reference network as released (track head included: its keys are part of the checkpoint)."""
    ref = ref_cls().eval()
    if weights is not None:
        from models.checkpoint import read_state_dict

        sd, _, _ = read_state_dict(weights)
        ref.load_state_dict(sd, strict=True)
    elif noise > 0:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in ref.parameters():
                p.add_(torch.randn(p.shape, generator=g) * noise)
    return ref


def build_onepass(ref: nn.Module, via_file: str | None = None) -> nn.Module:
    """onepass's ``vggt-1b`` network on the reference's weights (strict key check).

    Without ``via_file`` its parameters are the reference's own tensors. With it, the reference's
    state dict is first written there (``.pt`` as the released ``model.pt`` is, or ``.safetensors``) and
    read back through :func:`models.load_model`, the path a user's checkpoint takes.
    """
    from models.build import load_model
    from models.checkpoint import assign_weights
    from models.config import VGGT_1B
    from models.vggt import VGGT

    state = dict(ref.state_dict())
    has_track = any(k.startswith(TRACK_PREFIX) for k in state)
    cfg = dataclasses.replace(VGGT_1B, track_head=has_track)
    if via_file is not None:
        path = Path(via_file)
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        else:
            torch.save(state, path)
        return load_model(cfg, weights=path, device="cpu")
    with torch.device("meta"):
        model = VGGT(cfg)
    assign_weights(model, state, path="<reference state_dict>")
    return model.eval()


def compare_outputs(ref_out: dict[str, Any], our_out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per output: shapes, max |a − b|, max |ref|, their ratio and the norm-wise relative error."""
    rows: dict[str, dict[str, Any]] = {}
    names = list(COMPARED) + [f"pose_enc_list[{i}]" for i in range(len(ref_out.get("pose_enc_list", [])))]
    for name in names:
        if name.startswith("pose_enc_list["):
            i = int(name[len("pose_enc_list[") : -1])
            a, b = ref_out["pose_enc_list"][i], our_out["pose_enc_list"][i]
        else:
            a, b = ref_out[name], our_out[name]
        a, b = a.double(), b.double()
        row: dict[str, Any] = {"ref_shape": list(a.shape), "onepass_shape": list(b.shape)}
        if a.shape == b.shape:
            diff = (a - b).abs()
            scale = float(a.abs().max())
            row |= {
                "max_abs_diff": float(diff.max()),
                "max_abs_ref": scale,
                "rel_max": float(diff.max()) / max(scale, 1e-30),
                "rel_norm": float((a - b).norm() / a.norm().clamp_min(1e-30)),
                "finite": bool(torch.isfinite(b).all()),
            }
        rows[name] = row
    return rows


def run(
    vggt_src: str,
    *,
    weights: str | None = None,
    views: int = 2,
    height: int = 168,
    width: int = 224,
    seed: int = 0,
    noise: float = 0.02,
    threads: int | None = None,
    via_file: str | None = None,
) -> dict[str, Any]:
    """Build both networks, run them on the same seeded images, and return the comparison."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    ref = build_reference(import_reference(vggt_src), weights, seed, noise)
    ours = build_onepass(ref, via_file)
    t_build = time.perf_counter() - t0
    images = torch.rand(views, 3, height, width, generator=torch.Generator().manual_seed(seed + 1))
    with torch.inference_mode():
        t1 = time.perf_counter()
        ref_out = ref(images)
        t2 = time.perf_counter()
        our_out = ours(images)
        t3 = time.perf_counter()
    return {
        "vggt_src": str(Path(vggt_src).resolve()),
        "weights": weights or f"reference init + N(0, {noise}^2) noise, seed {seed}",
        "onepass_loaded": f"load_model('vggt-1b', weights={via_file!r})" if via_file else "shared tensors",
        "parameters": sum(p.numel() for p in ref.parameters()),
        "images": [views, 3, height, width],
        "dtype": "float32",
        "device": "cpu",
        "torch": torch.__version__,
        "seconds": {"build": round(t_build, 1), "reference": round(t2 - t1, 1), "onepass": round(t3 - t2, 1)},
        "outputs": compare_outputs(ref_out, our_out),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.eval.vggt_parity", description=__doc__.split("\n")[0])
    ap.add_argument("--vggt-src", required=True, help="checkout of facebookresearch/vggt (holds vggt/)")
    ap.add_argument("--weights", help="model.pt / model.safetensors (default: perturbed random weights)")
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--height", type=int, default=168, help="multiple of 14")
    ap.add_argument("--width", type=int, default=224, help="multiple of 14")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=0.02, help="std of the noise added to random weights")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--via-file", help="write the weights to this .pt/.safetensors and load onepass from it (5 GB)"
    )
    ap.add_argument("--tolerance", type=float, default=1e-3, help="max |a-b| / max |ref| per output")
    ap.add_argument("--json", help="write the result here too")
    args = ap.parse_args(argv)
    for name in ("height", "width"):
        if getattr(args, name) % 14:
            ap.error(f"--{name} must be a multiple of 14 (the patch size)")
    # every option but the verdict's two is one of run()'s parameters, under the same name
    result = run(**{k: v for k, v in vars(args).items() if k not in ("tolerance", "json")})
    result["tolerance"] = args.tolerance
    ok = True
    header = ("output", "shape", "max|a-b|", "max|ref|", "rel max", "rel norm")
    print("{:22s} {:>22s} {:>10s} {:>10s} {:>9s} {:>9s}".format(*header))
    for name, row in result["outputs"].items():
        if "rel_max" not in row:
            shapes = f"reference {row['ref_shape']} vs onepass {row['onepass_shape']}"
            print(f"{name:22s} shape mismatch: {shapes}")
            ok = False
            continue
        good = row["rel_max"] <= args.tolerance and row["finite"]
        ok &= good
        print(
            f"{name:22s} {str(row['ref_shape']):>22s} {row['max_abs_diff']:10.3g} {row['max_abs_ref']:10.3g} "
            f"{row['rel_max']:9.2e} {row['rel_norm']:9.2e} {'ok' if good else 'FAIL'}"
        )
    result["passed"] = ok
    print(f"seconds: {result['seconds']}; {'PASS' if ok else 'FAIL'} at tolerance {args.tolerance:g}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["build_onepass", "build_reference", "compare_outputs", "import_reference", "run", "main"]
