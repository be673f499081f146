"""Spherical-harmonics stage: view-dependent RGB from SH coefficients (degrees 0–3).

Real SH in the sign convention of the INRIA 3DGS code and gsplat, evaluated at the unit direction from the
camera centre to the Gaussian mean; gsplat then adds 0.5 and clamps at 0 (no upper clamp), and so do we.
Culled Gaussians (radii 0) get colour 0 and no gradient. The backward pass returns gradients for the
coefficients and, through the viewing direction, for the means.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from renderer.cpu._arrays import f64, native, to_tensor
from renderer.cpu._threads import NJIT_OPTIONS, block, jobs_for, launch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


@numba.njit(**NJIT_OPTIONS)
def sh_basis(degree, x, y, z, out):
    """Write the ``(degree + 1)²`` basis values at unit direction ``(x, y, z)`` into ``out``."""
    out[0] = C0
    if degree < 1:
        return
    out[1] = -C1 * y
    out[2] = C1 * z
    out[3] = -C1 * x
    if degree < 2:
        return
    xx, yy, zz = x * x, y * y, z * z
    out[4] = C2[0] * x * y
    out[5] = C2[1] * y * z
    out[6] = C2[2] * (2.0 * zz - xx - yy)
    out[7] = C2[3] * x * z
    out[8] = C2[4] * (xx - yy)
    if degree < 3:
        return
    out[9] = C3[0] * y * (3.0 * xx - yy)
    out[10] = C3[1] * x * y * z
    out[11] = C3[2] * y * (4.0 * zz - xx - yy)
    out[12] = C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy)
    out[13] = C3[4] * x * (4.0 * zz - xx - yy)
    out[14] = C3[5] * z * (xx - yy)
    out[15] = C3[6] * x * (xx - 3.0 * yy)


@numba.njit(**NJIT_OPTIONS)
def sh_basis_grad(degree, x, y, z, gx, gy, gz):
    """Partial derivatives of each basis polynomial w.r.t. x, y, z (as written in :func:`sh_basis`)."""
    for k in range(16):
        gx[k] = 0.0
        gy[k] = 0.0
        gz[k] = 0.0
    if degree < 1:
        return
    gy[1] = -C1
    gz[2] = C1
    gx[3] = -C1
    if degree < 2:
        return
    xx, yy, zz = x * x, y * y, z * z
    gx[4], gy[4] = C2[0] * y, C2[0] * x
    gy[5], gz[5] = C2[1] * z, C2[1] * y
    gx[6], gy[6], gz[6] = -2.0 * C2[2] * x, -2.0 * C2[2] * y, 4.0 * C2[2] * z
    gx[7], gz[7] = C2[3] * z, C2[3] * x
    gx[8], gy[8] = 2.0 * C2[4] * x, -2.0 * C2[4] * y
    if degree < 3:
        return
    gx[9], gy[9] = C3[0] * 6.0 * x * y, C3[0] * (3.0 * xx - 3.0 * yy)
    gx[10], gy[10], gz[10] = C3[1] * y * z, C3[1] * x * z, C3[1] * x * y
    gx[11], gy[11], gz[11] = C3[2] * -2.0 * x * y, C3[2] * (4.0 * zz - xx - 3.0 * yy), C3[2] * 8.0 * y * z
    gx[12], gy[12], gz[12] = (
        C3[3] * -6.0 * x * z,
        C3[3] * -6.0 * y * z,
        C3[3] * (6.0 * zz - 3.0 * xx - 3.0 * yy),
    )
    gx[13], gy[13], gz[13] = C3[4] * (4.0 * zz - 3.0 * xx - yy), C3[4] * -2.0 * x * y, C3[4] * 8.0 * x * z
    gx[14], gy[14], gz[14] = C3[5] * 2.0 * x * z, C3[5] * -2.0 * y * z, C3[5] * (xx - yy)
    gx[15], gy[15] = C3[6] * (3.0 * xx - 3.0 * yy), C3[6] * -6.0 * x * y


@numba.njit(**NJIT_OPTIONS)
def _sh_fwd_kernel(job, n_jobs, degree, means, campos, coeffs, radii, colors):
    B, N = means.shape[0], means.shape[1]
    C = campos.shape[1]
    Cc = coeffs.shape[1]
    nb = (degree + 1) * (degree + 1)
    basis = np.empty(16)
    lo, hi = block(job, n_jobs, B * N)
    for bn in range(lo, hi):
        b = bn // N
        n = bn - b * N
        for c in range(C):
            if radii[b, c, n, 0] <= 0 or radii[b, c, n, 1] <= 0:
                for k in range(3):
                    colors[b, c, n, k] = 0.0
                continue
            dx = means[b, n, 0] - campos[b, c, 0]
            dy = means[b, n, 1] - campos[b, c, 1]
            dz = means[b, n, 2] - campos[b, c, 2]
            norm = math.sqrt(dx * dx + dy * dy + dz * dz)
            inv = 1.0 / norm if norm > 0.0 else 0.0
            sh_basis(degree, dx * inv, dy * inv, dz * inv, basis)
            cc = c if Cc > 1 else 0
            for k in range(3):
                acc = 0.0
                for j in range(nb):
                    acc += basis[j] * coeffs[b, cc, n, j, k]
                colors[b, c, n, k] = max(acc + 0.5, 0.0)


@numba.njit(**NJIT_OPTIONS)
def _sh_bwd_kernel(job, n_jobs, degree, means, campos, coeffs, radii, v_colors, v_coeffs, v_means):
    B, N = means.shape[0], means.shape[1]
    C = campos.shape[1]
    Cc = coeffs.shape[1]
    nb = (degree + 1) * (degree + 1)
    basis = np.empty(16)
    gx = np.empty(16)
    gy = np.empty(16)
    gz = np.empty(16)
    vc = np.empty(3)
    lo, hi = block(job, n_jobs, B * N)
    for bn in range(lo, hi):
        b = bn // N
        n = bn - b * N
        vm0, vm1, vm2 = 0.0, 0.0, 0.0
        if Cc == 1:
            for j in range(coeffs.shape[3]):
                for k in range(3):
                    v_coeffs[b, 0, n, j, k] = 0.0
        for c in range(C):
            cc = c if Cc > 1 else 0
            if Cc > 1:
                for j in range(coeffs.shape[3]):
                    for k in range(3):
                        v_coeffs[b, cc, n, j, k] = 0.0
            if radii[b, c, n, 0] <= 0 or radii[b, c, n, 1] <= 0:
                continue
            dx = means[b, n, 0] - campos[b, c, 0]
            dy = means[b, n, 1] - campos[b, c, 1]
            dz = means[b, n, 2] - campos[b, c, 2]
            norm = math.sqrt(dx * dx + dy * dy + dz * dz)
            inv = 1.0 / norm if norm > 0.0 else 0.0
            ux, uy, uz = dx * inv, dy * inv, dz * inv
            sh_basis(degree, ux, uy, uz, basis)
            # colour channels that were clamped at 0 pass no gradient (torch.clamp_min semantics: >= passes)
            for k in range(3):
                acc = 0.0
                for j in range(nb):
                    acc += basis[j] * coeffs[b, cc, n, j, k]
                vc[k] = v_colors[b, c, n, k] if acc + 0.5 >= 0.0 else 0.0
            for j in range(nb):
                for k in range(3):
                    v_coeffs[b, cc, n, j, k] += basis[j] * vc[k]
            if degree > 0 and norm > 0.0:
                sh_basis_grad(degree, ux, uy, uz, gx, gy, gz)
                vux, vuy, vuz = 0.0, 0.0, 0.0
                for j in range(1, nb):
                    w = (
                        coeffs[b, cc, n, j, 0] * vc[0]
                        + coeffs[b, cc, n, j, 1] * vc[1]
                        + coeffs[b, cc, n, j, 2] * vc[2]
                    )
                    vux += gx[j] * w
                    vuy += gy[j] * w
                    vuz += gz[j] * w
                # u = d / |d|: dL/dd = (v - u (u·v)) / |d|
                dot = ux * vux + uy * vuy + uz * vuz
                vm0 += (vux - ux * dot) * inv
                vm1 += (vuy - uy * dot) * inv
                vm2 += (vuz - uz * dot) * inv
        v_means[b, n, 0] = vm0
        v_means[b, n, 1] = vm1
        v_means[b, n, 2] = vm2


def camera_positions(viewmats: Tensor) -> Tensor:
    """Camera centres in world coordinates ``[..., C, 3]`` from world→camera ``[..., C, 4, 4]`` (``-Rᵀt``)."""
    R, t = viewmats[..., :3, :3], viewmats[..., :3, 3]
    return -(R.transpose(-1, -2) @ t[..., None])[..., 0]


class SHFn(torch.autograd.Function):
    """Differentiable SH colours.

    Inputs: degree (int), means ``[B, N, 3]``, campos ``[B, C, 3]`` (not differentiated), coeffs
    ``[B, 1 or C, N, K, 3]`` with ``K >= (degree + 1)²``, radii ``[B, C, N, 2]``.
    Output: colours ``[B, C, N, 3]`` in the dtype of ``coeffs``, ``max(Σ_j basis_j · coeff_j + 0.5, 0)``.
    Coefficients stay float32 when given so (no float64 copy of a large ``[N, 16, 3]`` table).
    """

    @staticmethod
    def forward(ctx, degree: int, means, campos, coeffs, radii):
        B, N = means.shape[:2]
        C = campos.shape[1]
        colors = np.empty((B, C, N, 3))
        args = (degree, f64(means), f64(campos), native(coeffs), radii.numpy())
        launch(_sh_fwd_kernel, jobs_for(B * N), *args, colors)
        ctx.degree = degree
        ctx.save_for_backward(means, campos, coeffs, radii)
        return to_tensor(colors, coeffs.dtype)

    @staticmethod
    def backward(ctx, v_colors):
        means, campos, coeffs, radii = ctx.saved_tensors
        v_coeffs = np.empty(coeffs.shape)
        v_means = np.empty(means.shape)
        args = (ctx.degree, f64(means), f64(campos), native(coeffs), radii.numpy(), f64(v_colors))
        launch(_sh_bwd_kernel, jobs_for(means.shape[0] * means.shape[1]), *args, v_coeffs, v_means)
        gm = to_tensor(v_means, means.dtype) if ctx.needs_input_grad[1] else None
        gc = to_tensor(v_coeffs, coeffs.dtype) if ctx.needs_input_grad[3] else None
        return None, gm, None, gc, None
