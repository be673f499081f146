"""``rasterize``: gsplat-compatible 3D Gaussian rasterization with a backend chosen per call.

Front end shared by all backends: validate arguments (errors name the argument and show what was got),
flatten leading batch dims, neutralise non-finite Gaussians (counted in ``meta.n_nonfinite``), dispatch,
and restore the batch dims.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from renderer.backends import resolve_backend
from renderer.cpu._arrays import all_finite
from renderer.options import RasterMeta, RenderOptions


def _shape(t: Tensor) -> list[int]:
    return list(t.shape)


def _check_tensor(name: str, t: object, expected: tuple[int | None, ...], batch: tuple[int, ...]) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    want = batch + expected
    ok = t.dim() == len(want) and all(w is None or w == g for w, g in zip(want, t.shape, strict=True))
    if not ok:
        pretty = ", ".join("*" if w is None else str(w) for w in want)
        raise ValueError(f"{name} must have shape [{pretty}], got {_shape(t)}")
    return t


def _check_colors(colors: object, batch: tuple[int, ...], C: int, N: int, sh_degree: int | None) -> bool:
    """Validate ``colors``; return whether they are per camera (``[..., C, N, ...]``)."""
    if not isinstance(colors, Tensor) or not colors.is_floating_point():
        got = colors.dtype if isinstance(colors, Tensor) else type(colors).__name__
        raise TypeError(f"colors must be a floating-point torch.Tensor, got {got}")
    nb = len(batch)
    if sh_degree is None:
        if colors.dim() == nb + 2 and tuple(colors.shape[:-1]) == batch + (N,):
            return False
        if colors.dim() == nb + 3 and tuple(colors.shape[:-1]) == batch + (C, N):
            return True
        raise ValueError(
            f"colors must be [..., N, D] or [..., C, N, D] features when sh_degree is None "
            f"(batch dims {list(batch)}, C={C}, N={N}), got {_shape(colors)}"
        )
    per_view = colors.dim() == nb + 4
    if not (colors.dim() in (nb + 3, nb + 4) and colors.shape[-1] == 3):
        raise ValueError(
            f"colors must be SH coefficients [..., N, K, 3] or [..., C, N, K, 3] when sh_degree={sh_degree}, "
            f"got {_shape(colors)}"
        )
    lead = batch + ((C, N) if per_view else (N,))
    if tuple(colors.shape[:-2]) != lead:
        raise ValueError(
            f"colors must have leading shape {list(lead)} (batch dims, C, N), got {_shape(colors)}"
        )
    K = colors.shape[-2]
    if not (sh_degree + 1) ** 2 <= K <= 16:
        raise ValueError(
            f"colors has K={K} SH bases; sh_degree={sh_degree} needs {(sh_degree + 1) ** 2} <= K <= 16"
        )
    return per_view


def _neutralise_nonfinite(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    per_view: bool,
    feat_dims: int,
) -> tuple[list[Tensor], int]:
    """Replace Gaussians with any NaN/Inf parameter by invisible ones (opacity 0); return how many.

    Works on the caller's shapes (``[..., N, ·]``); gradients of the replaced rows are 0, never NaN.
    """
    tensors = [means, quats, scales, opacities, colors]
    if all(all_finite(t) for t in tensors):
        return tensors, 0
    valid = torch.isfinite(means).all(-1) & torch.isfinite(quats).all(-1) & torch.isfinite(scales).all(-1)
    valid &= torch.isfinite(opacities)
    col_ok = torch.isfinite(colors).flatten(-feat_dims).all(-1)  # [..., (C,) N]
    valid &= col_ok.all(-2) if per_view else col_ok
    vc = valid.unsqueeze(-2) if per_view else valid
    vc = vc.reshape(vc.shape + (1,) * feat_dims)
    zero = means.new_zeros(())
    out = [
        torch.where(valid[..., None], means, zero),
        torch.where(valid[..., None], quats, zero),
        torch.where(valid[..., None], scales, zero),
        torch.where(valid, opacities, zero),
        torch.where(vc, colors, zero),
    ]
    return out, int((~valid).sum())


def rasterize(
    means: Tensor,  # [..., N, 3]
    quats: Tensor,  # [..., N, 4]
    scales: Tensor,  # [..., N, 3]
    opacities: Tensor,  # [..., N]
    colors: Tensor,  # [..., (C,) N, D] or [..., (C,) N, K, 3]
    viewmats: Tensor,  # [..., C, 4, 4]
    Ks: Tensor,  # [..., C, 3, 3]
    width: int,
    height: int,
    *,
    sh_degree: int | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    backgrounds: Tensor | None = None,  # [..., C, D]
    render_mode: str = "RGB",
    backend: str = "auto",
) -> tuple[Tensor, Tensor, RasterMeta]:
    """Rasterize 3D Gaussians into ``C`` cameras per scene, with gsplat's conventions and results.

    Args:
        means: ``[..., N, 3]`` world positions.
        quats: ``[..., N, 4]`` wxyz rotations (need not be unit; zero → identity).
        scales: ``[..., N, 3]`` linear standard deviations.
        opacities: ``[..., N]`` activated opacities in [0, 1].
        colors: post-activation features ``[..., N, D]`` / ``[..., C, N, D]`` when ``sh_degree`` is None,
            else SH coefficients ``[..., N, K, 3]`` / ``[..., C, N, K, 3]`` (``(sh_degree+1)² ≤ K ≤ 16``),
            turned into RGB as ``max(SH(dir) + 0.5, 0)``.
        viewmats: ``[..., C, 4, 4]`` world→camera, OpenCV axes (x right, y down, z forward).
        Ks: ``[..., C, 3, 3]`` pinhole intrinsics in pixels, pixel centres at +0.5 (skew ignored).
        width, height: image size, 1 … 8192.
        sh_degree: SH degree 0–3 to evaluate, or None for features.
        near_plane, far_plane: depth range kept (camera z).
        eps2d: low-pass blur added to each 2D covariance (pixels²).
        backgrounds: ``[..., C, D]`` colour behind the Gaussians (depth channels get 0).
        render_mode: ``"RGB"``, ``"D"`` (Σ w·z), ``"ED"`` (Σ w·z / alpha), ``"RGB+D"``, ``"RGB+ED"``.
        backend: ``"auto"``, ``"cpu"``, ``"gsplat"`` or ``"torch"`` (see :mod:`renderer.backends`).

    Returns:
        ``render_colors [..., C, H, W, X]`` (X = D, 1 or D+1 by mode; not clamped),
        ``render_alphas [..., C, H, W, 1]``, and a :class:`RasterMeta`.

    Examples:
        >>> colors, alphas, meta = rasterize(means, quats, scales, opacities, rgb, viewmats, Ks, 640, 360)
        >>> colors.shape, meta.n_nonfinite
        (torch.Size([1, 360, 640, 3]), 0)
    """
    opts = RenderOptions(
        width=width,
        height=height,
        near_plane=float(near_plane),
        far_plane=float(far_plane),
        eps2d=float(eps2d),
        sh_degree=sh_degree,
        render_mode=render_mode,
    )
    if not isinstance(means, Tensor) or means.dim() < 2:
        raise ValueError(
            f"means must be a tensor of shape [..., N, 3], got {getattr(means, 'shape', means)!r}"
        )
    batch = tuple(means.shape[:-2])
    N = means.shape[-2]
    _check_tensor("means", means, (N, 3), batch)
    _check_tensor("quats", quats, (N, 4), batch)
    _check_tensor("scales", scales, (N, 3), batch)
    _check_tensor("opacities", opacities, (N,), batch)
    _check_tensor("viewmats", viewmats, (None, 4, 4), batch)
    C = viewmats.shape[-3]
    _check_tensor("Ks", Ks, (C, 3, 3), batch)
    per_view = _check_colors(colors, batch, C, N, sh_degree)
    for name, t in (("viewmats", viewmats), ("Ks", Ks)):
        if not all_finite(t):
            raise ValueError(f"{name} must be finite, got NaN/Inf entries")
    if not bool((Ks[..., 0, 0] > 0).all() and (Ks[..., 1, 1] > 0).all()):
        raise ValueError("Ks must have positive focal lengths Ks[..., 0, 0] and Ks[..., 1, 1]")
    gauss_args = {"means": means, "quats": quats, "scales": scales, "opacities": opacities, "colors": colors}
    dtypes = {n: t.dtype for n, t in gauss_args.items()}
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"means, quats, scales, opacities and colors must share one dtype, got {dtypes}")
    devices = {t.device for t in (means, quats, scales, opacities, colors, viewmats, Ks)}
    if len(devices) > 1:
        raise ValueError(f"all tensors must be on one device, got {sorted(str(d) for d in devices)}")
    device = means.device
    dtype = means.dtype
    D_col = 3 if sh_degree is not None else colors.shape[-1]
    if backgrounds is not None:
        if not isinstance(backgrounds, Tensor):
            raise TypeError(f"backgrounds must be a torch.Tensor or None, got {type(backgrounds).__name__}")
        try:
            backgrounds = torch.broadcast_to(backgrounds.to(device, dtype), batch + (C, D_col))
        except RuntimeError as e:
            raise ValueError(
                f"backgrounds must broadcast to {list(batch + (C, D_col))} ([..., C, D]), "
                f"got {_shape(backgrounds)}"
            ) from e
    name, _ = resolve_backend(backend, device)

    feat_dims = 1 if sh_degree is None else 2
    gauss, n_bad = _neutralise_nonfinite(means, quats, scales, opacities, colors, per_view, feat_dims)
    if name == "gsplat":
        from renderer.backends.gsplat_cuda import rasterize_gsplat

        render, alpha, meta = rasterize_gsplat(*gauss, viewmats, Ks, backgrounds, opts)
    else:
        if name == "cpu":
            from renderer.backends.cpu import rasterize_cpu as run
        else:
            from renderer._torch_ref import _rasterize_flat as run
        B = math.prod(batch)
        flat = [t.reshape(B, *t.shape[len(batch) :]).cpu() for t in (*gauss, viewmats, Ks)]
        bg = None if backgrounds is None else backgrounds.reshape(B, C, D_col).cpu()
        render, alpha, meta = run(*flat, bg, opts, batch)
        render, alpha = render.to(device), alpha.to(device)
    meta.n_nonfinite = n_bad
    return render, alpha, meta
