"""An independent brute-force Gaussian renderer in numpy, written from the published rules only.

No tiles, no radii, no spans, no incremental exp: every pixel of every camera looks at every Gaussian, in
depth order, with gsplat's EWA projection (perspective Jacobian at the mean clamped to 1.3× the FoV, eps2d
blur) and compositing rule (alpha = min(0.999, o·exp(-σ)), skip alpha < 1/255, stop before T ≤ 1e-4).
SH colours are re-derived here from the real-SH polynomials of degree ≤ 3.
"""

from __future__ import annotations

import numpy as np

SH = [
    lambda x, y, z: 0.28209479177387814 + 0 * x,
    lambda x, y, z: -0.4886025119029199 * y,
    lambda x, y, z: 0.4886025119029199 * z,
    lambda x, y, z: -0.4886025119029199 * x,
    lambda x, y, z: 1.0925484305920792 * x * y,
    lambda x, y, z: -1.0925484305920792 * y * z,
    lambda x, y, z: 0.31539156525252005 * (3 * z * z - 1),
    lambda x, y, z: -1.0925484305920792 * x * z,
    lambda x, y, z: 0.5462742152960396 * (x * x - y * y),
    lambda x, y, z: -0.5900435899266435 * y * (3 * x * x - y * y),
    lambda x, y, z: 2.890611442640554 * x * y * z,
    lambda x, y, z: -0.4570457994644658 * y * (5 * z * z - 1),
    lambda x, y, z: 0.3731763325901154 * z * (5 * z * z - 3),
    lambda x, y, z: -0.4570457994644658 * x * (5 * z * z - 1),
    lambda x, y, z: 1.445305721320277 * z * (x * x - y * y),
    lambda x, y, z: -0.5900435899266435 * x * (x * x - 3 * y * y),
]


def _rotation(q: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(n > 0, q / np.where(n > 0, n, 1), np.array([1.0, 0, 0, 0]))
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def render_camera(
    means, quats, scales, opacities, colors, viewmat, K, width, height, *, sh_degree=None, eps2d=0.3,
    near=0.01, far=1e10, background=None, mode="RGB",
):  # fmt: skip
    """One camera: returns ``(image [H, W, X], alpha [H, W])`` with the channels of ``mode``."""
    R_v, t_v = viewmat[:3, :3], viewmat[:3, 3]
    p = means @ R_v.T + t_v
    M = _rotation(quats) * scales[:, None, :]
    cov_c = R_v @ (M @ M.transpose(0, 2, 1)) @ R_v.T
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    x, y, z = p.T
    tx = z * np.clip(x / z, -(cx / fx + 0.15 * width / fx), (width - cx) / fx + 0.15 * width / fx)
    ty = z * np.clip(y / z, -(cy / fy + 0.15 * height / fy), (height - cy) / fy + 0.15 * height / fy)
    J = np.zeros((len(z), 2, 3))
    J[:, 0, 0], J[:, 0, 2] = fx / z, -fx * tx / z**2
    J[:, 1, 1], J[:, 1, 2] = fy / z, -fy * ty / z**2
    cov2d = J @ cov_c @ J.transpose(0, 2, 1) + eps2d * np.eye(2)
    conic = np.linalg.inv(cov2d)
    uv = np.stack([fx * x / z + cx, fy * y / z + cy], -1)
    if sh_degree is None:
        rgb = colors
    else:
        d = means + R_v.T @ t_v  # means - camera centre
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        basis = np.stack([SH[k](*d.T) for k in range((sh_degree + 1) ** 2)], -1)
        rgb = np.maximum(np.einsum("nk,nkc->nc", basis, colors[:, : basis.shape[1]]) + 0.5, 0)
    feats = {"RGB": rgb, "D": z[:, None], "ED": z[:, None]}.get(mode)
    if feats is None:
        feats = np.concatenate([rgb, z[:, None]], -1)
    keep = (z >= near) & (z <= far) & (z > 0) & (opacities >= 1 / 255)
    order = np.argsort(np.where(keep, z, np.inf), kind="stable")[: keep.sum()]
    img = np.zeros((height, width, feats.shape[1]))
    alpha_img = np.zeros((height, width))
    for i in range(height):
        for j in range(width):
            T, acc = 1.0, np.zeros(feats.shape[1])
            d = uv[order] - np.array([j + 0.5, i + 0.5])
            q = conic[order]
            sigma = (
                0.5 * (q[:, 0, 0] * d[:, 0] ** 2 + q[:, 1, 1] * d[:, 1] ** 2) + q[:, 0, 1] * d[:, 0] * d[:, 1]
            )
            alphas = np.minimum(0.999, opacities[order] * np.exp(-sigma))
            for k, g in enumerate(order):
                a = alphas[k]
                if sigma[k] < 0 or a < 1 / 255:
                    continue
                if T * (1 - a) <= 1e-4:
                    break
                acc += feats[g] * a * T
                T *= 1 - a
            if background is not None and mode not in ("D", "ED"):
                acc[: background.shape[0]] += T * background
            if mode in ("ED", "RGB+ED"):
                acc[-1] /= max(1 - T, 1e-10)
            img[i, j], alpha_img[i, j] = acc, 1 - T
    return img, alpha_img


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
