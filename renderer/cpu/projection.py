"""Projection stage: 3D Gaussians → screen-space means, conics, depths and radii (EWA splatting).

Per Gaussian ``n`` and camera ``c`` (gsplat's ``fully_fused_projection`` for pinhole cameras):

* ``Σ = R S Sᵀ Rᵀ`` from the normalised wxyz quaternion and linear scales (a zero quaternion → identity);
* camera-space mean ``p = R_v x + t_v`` and covariance ``R_v Σ R_vᵀ``;
* ``Σ₂ = J Σ_c Jᵀ + eps2d·I`` with the perspective Jacobian ``J`` evaluated at the mean clamped to 1.3×
  the field of view (gsplat's guard against huge off-screen footprints);
* ``conic = Σ₂⁻¹`` (upper triangle), ``mean2d = (fx x/z + cx, fy y/z + cy)`` (skew ignored), ``depth = z``;
* radius per axis ``ceil(k · sqrt(Σ₂ diagonal))`` with ``k = min(3.33, sqrt(2 ln(255 · opacity)))``.

A Gaussian is culled (radii 0, means2d and conics 0) when ``z ≤ 0``, ``z < near``, ``z > far``, the 2D
covariance is singular, ``opacity < 1/255``, or its box misses the image. The backward pass returns
gradients for means, quaternions and scales (viewmats and Ks are not differentiated).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from renderer.cpu._arrays import f64, to_tensor
from renderer.cpu._threads import NJIT_OPTIONS, block, jobs_for, launch
from renderer.options import ALPHA_THRESHOLD, EXTENT_SIGMAS, RenderOptions


@numba.njit(**NJIT_OPTIONS)
def _rotation(qw, qx, qy, qz):
    """Rotation matrix entries (row-major) of a wxyz quaternion, normalised first; zero → identity."""
    norm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    if norm > 0.0:
        w, x, y, z = qw / norm, qx / norm, qy / norm, qz / norm
    else:
        w, x, y, z = 1.0, 0.0, 0.0, 0.0
    r00 = 1.0 - 2.0 * (y * y + z * z)
    r01 = 2.0 * (x * y - w * z)
    r02 = 2.0 * (x * z + w * y)
    r10 = 2.0 * (x * y + w * z)
    r11 = 1.0 - 2.0 * (x * x + z * z)
    r12 = 2.0 * (y * z - w * x)
    r20 = 2.0 * (x * z - w * y)
    r21 = 2.0 * (y * z + w * x)
    r22 = 1.0 - 2.0 * (x * x + y * y)
    return norm, w, x, y, z, r00, r01, r02, r10, r11, r12, r20, r21, r22


@numba.njit(**NJIT_OPTIONS)
def _project_fwd_kernel(
    job,
    n_jobs,
    means,
    quats,
    scales,
    opacities,
    use_opacities,
    viewmats,
    Ks,
    width,
    height,
    eps2d,
    near,
    far,
    radii,
    means2d,
    depths,
    conics,
):
    B, N = means.shape[0], means.shape[1]
    C = viewmats.shape[1]
    cov_w = np.empty(9)
    lo, hi = block(job, n_jobs, B * N)
    for bn in range(lo, hi):
        b = bn // N
        n = bn - b * N
        _, _, _, _, _, r00, r01, r02, r10, r11, r12, r20, r21, r22 = _rotation(
            quats[b, n, 0], quats[b, n, 1], quats[b, n, 2], quats[b, n, 3]
        )
        s0, s1, s2 = scales[b, n, 0], scales[b, n, 1], scales[b, n, 2]
        # M = R diag(s); Σ = M Mᵀ
        m00, m01, m02 = r00 * s0, r01 * s1, r02 * s2
        m10, m11, m12 = r10 * s0, r11 * s1, r12 * s2
        m20, m21, m22 = r20 * s0, r21 * s1, r22 * s2
        S00 = m00 * m00 + m01 * m01 + m02 * m02
        S01 = m00 * m10 + m01 * m11 + m02 * m12
        S02 = m00 * m20 + m01 * m21 + m02 * m22
        S11 = m10 * m10 + m11 * m11 + m12 * m12
        S12 = m10 * m20 + m11 * m21 + m12 * m22
        S22 = m20 * m20 + m21 * m21 + m22 * m22
        extent = EXTENT_SIGMAS
        if use_opacities:
            o = opacities[b, n]
            if not o >= ALPHA_THRESHOLD:
                extent = -1.0
            else:
                extent = min(EXTENT_SIGMAS, math.sqrt(2.0 * math.log(o / ALPHA_THRESHOLD)))
        for c in range(C):
            radii[b, c, n, 0] = 0
            radii[b, c, n, 1] = 0
            means2d[b, c, n, 0] = 0.0
            means2d[b, c, n, 1] = 0.0
            conics[b, c, n, 0] = 0.0
            conics[b, c, n, 1] = 0.0
            conics[b, c, n, 2] = 0.0
            V = viewmats[b, c]
            px, py, pz = means[b, n, 0], means[b, n, 1], means[b, n, 2]
            x = V[0, 0] * px + V[0, 1] * py + V[0, 2] * pz + V[0, 3]
            y = V[1, 0] * px + V[1, 1] * py + V[1, 2] * pz + V[1, 3]
            z = V[2, 0] * px + V[2, 1] * py + V[2, 2] * pz + V[2, 3]
            depths[b, c, n] = z
            if not (z > 0.0 and z >= near and z <= far) or extent < 0.0:
                continue
            # Σ_c = R_v Σ R_vᵀ (symmetric; T = R_v Σ first)
            for i in range(3):
                t0 = V[i, 0] * S00 + V[i, 1] * S01 + V[i, 2] * S02
                t1 = V[i, 0] * S01 + V[i, 1] * S11 + V[i, 2] * S12
                t2 = V[i, 0] * S02 + V[i, 1] * S12 + V[i, 2] * S22
                for j in range(3):
                    cov_w[i * 3 + j] = t0 * V[j, 0] + t1 * V[j, 1] + t2 * V[j, 2]
            fx, fy, cx, cy = Ks[b, c, 0, 0], Ks[b, c, 1, 1], Ks[b, c, 0, 2], Ks[b, c, 1, 2]
            lim_xp = (width - cx) / fx + 0.3 * (0.5 * width / fx)
            lim_xn = cx / fx + 0.3 * (0.5 * width / fx)
            lim_yp = (height - cy) / fy + 0.3 * (0.5 * height / fy)
            lim_yn = cy / fy + 0.3 * (0.5 * height / fy)
            tx = z * min(lim_xp, max(-lim_xn, x / z))
            ty = z * min(lim_yp, max(-lim_yn, y / z))
            j00 = fx / z
            j02 = -fx * tx / (z * z)
            j11 = fy / z
            j12 = -fy * ty / (z * z)
            c00 = j00 * j00 * cov_w[0] + 2.0 * j00 * j02 * cov_w[2] + j02 * j02 * cov_w[8] + eps2d
            c01 = j00 * j11 * cov_w[1] + j00 * j12 * cov_w[2] + j02 * j11 * cov_w[5] + j02 * j12 * cov_w[8]
            c11 = j11 * j11 * cov_w[4] + 2.0 * j11 * j12 * cov_w[5] + j12 * j12 * cov_w[8] + eps2d
            det = c00 * c11 - c01 * c01
            if not det > 0.0:
                continue
            rx = math.ceil(extent * math.sqrt(c00))
            ry = math.ceil(extent * math.sqrt(c11))
            if rx <= 0.0 and ry <= 0.0:
                continue
            u = fx * x / z + cx
            v = fy * y / z + cy
            if u + rx <= 0.0 or u - rx >= width or v + ry <= 0.0 or v - ry >= height:
                continue
            radii[b, c, n, 0] = np.int32(rx)
            radii[b, c, n, 1] = np.int32(ry)
            means2d[b, c, n, 0] = u
            means2d[b, c, n, 1] = v
            conics[b, c, n, 0] = c11 / det
            conics[b, c, n, 1] = -c01 / det
            conics[b, c, n, 2] = c00 / det


@numba.njit(**NJIT_OPTIONS)
def _project_bwd_kernel(
    job,
    n_jobs,
    means,
    quats,
    scales,
    viewmats,
    Ks,
    width,
    height,
    eps2d,
    radii,
    v_means2d,
    v_depths,
    v_conics,
    v_means,
    v_quats,
    v_scales,
):
    B, N = means.shape[0], means.shape[1]
    C = viewmats.shape[1]
    R = np.empty((3, 3))
    s = np.empty(3)
    M = np.empty((3, 3))
    Sig = np.empty((3, 3))
    v_sig = np.empty((3, 3))
    Sc = np.empty((3, 3))
    tmp = np.empty((3, 3))
    G3 = np.empty((3, 3))
    vR = np.empty((3, 3))
    lo, hi = block(job, n_jobs, B * N)
    for bn in range(lo, hi):
        b = bn // N
        n = bn - b * N
        qnorm, w, qx, qy, qz, r00, r01, r02, r10, r11, r12, r20, r21, r22 = _rotation(
            quats[b, n, 0], quats[b, n, 1], quats[b, n, 2], quats[b, n, 3]
        )
        R[0, 0], R[0, 1], R[0, 2] = r00, r01, r02
        R[1, 0], R[1, 1], R[1, 2] = r10, r11, r12
        R[2, 0], R[2, 1], R[2, 2] = r20, r21, r22
        s[0], s[1], s[2] = scales[b, n, 0], scales[b, n, 1], scales[b, n, 2]
        for i in range(3):
            for j in range(3):
                M[i, j] = R[i, j] * s[j]
        for i in range(3):
            for j in range(3):
                Sig[i, j] = M[i, 0] * M[j, 0] + M[i, 1] * M[j, 1] + M[i, 2] * M[j, 2]
        v_sig[:] = 0.0
        vmx, vmy, vmz = 0.0, 0.0, 0.0
        for c in range(C):
            if radii[b, c, n, 0] <= 0 or radii[b, c, n, 1] <= 0:
                continue
            V = viewmats[b, c]
            px, py, pz = means[b, n, 0], means[b, n, 1], means[b, n, 2]
            x = V[0, 0] * px + V[0, 1] * py + V[0, 2] * pz + V[0, 3]
            y = V[1, 0] * px + V[1, 1] * py + V[1, 2] * pz + V[1, 3]
            z = V[2, 0] * px + V[2, 1] * py + V[2, 2] * pz + V[2, 3]
            for i in range(3):
                for j in range(3):
                    tmp[i, j] = V[i, 0] * Sig[0, j] + V[i, 1] * Sig[1, j] + V[i, 2] * Sig[2, j]
            for i in range(3):
                for j in range(3):
                    Sc[i, j] = tmp[i, 0] * V[j, 0] + tmp[i, 1] * V[j, 1] + tmp[i, 2] * V[j, 2]
            fx, fy, cx, cy = Ks[b, c, 0, 0], Ks[b, c, 1, 1], Ks[b, c, 0, 2], Ks[b, c, 1, 2]
            lim_xp = (width - cx) / fx + 0.3 * (0.5 * width / fx)
            lim_xn = cx / fx + 0.3 * (0.5 * width / fx)
            lim_yp = (height - cy) / fy + 0.3 * (0.5 * height / fy)
            lim_yn = cy / fy + 0.3 * (0.5 * height / fy)
            xr, yr = x / z, y / z
            x_inside = xr >= -lim_xn and xr <= lim_xp
            y_inside = yr >= -lim_yn and yr <= lim_yp
            tx = z * min(lim_xp, max(-lim_xn, xr))
            ty = z * min(lim_yp, max(-lim_yn, yr))
            z2 = z * z
            j00, j02, j11, j12 = fx / z, -fx * tx / z2, fy / z, -fy * ty / z2
            c00 = j00 * j00 * Sc[0, 0] + 2.0 * j00 * j02 * Sc[0, 2] + j02 * j02 * Sc[2, 2] + eps2d
            c01 = j00 * j11 * Sc[0, 1] + j00 * j12 * Sc[0, 2] + j02 * j11 * Sc[1, 2] + j02 * j12 * Sc[2, 2]
            c11 = j11 * j11 * Sc[1, 1] + 2.0 * j11 * j12 * Sc[1, 2] + j12 * j12 * Sc[2, 2] + eps2d
            det = c00 * c11 - c01 * c01
            ia, ib, ic = c11 / det, -c01 / det, c00 / det
            # conic = inverse of Σ₂ → dL/dΣ₂ = -Σ₂⁻¹ V Σ₂⁻¹ with V = [[va, vb/2], [vb/2, vc]]
            va, vb, vc = v_conics[b, c, n, 0], 0.5 * v_conics[b, c, n, 1], v_conics[b, c, n, 2]
            t00 = va * ia + vb * ib
            t01 = va * ib + vb * ic
            t10 = vb * ia + vc * ib
            t11 = vb * ib + vc * ic
            g00 = -(ia * t00 + ib * t10)
            g01 = -(ia * t01 + ib * t11)
            g11 = -(ib * t01 + ic * t11)
            # Σ₂ = J Σ_c Jᵀ: dL/dΣ_c = Jᵀ G J, dL/dJ = 2 G J Σ_c (G, Σ_c symmetric)
            # with J = [[j00, 0, j02], [0, j11, j12]]
            J0 = (j00, 0.0, j02)
            J1 = (0.0, j11, j12)
            for i in range(3):
                for j in range(3):
                    G3[i, j] = (
                        J0[i] * g00 * J0[j] + J0[i] * g01 * J1[j] + J1[i] * g01 * J0[j] + J1[i] * g11 * J1[j]
                    )
            # rows of G J
            gj0 = (g00 * J0[0] + g01 * J1[0], g00 * J0[1] + g01 * J1[1], g00 * J0[2] + g01 * J1[2])
            gj1 = (g01 * J0[0] + g11 * J1[0], g01 * J0[1] + g11 * J1[1], g01 * J0[2] + g11 * J1[2])
            v_j00 = 2.0 * (gj0[0] * Sc[0, 0] + gj0[1] * Sc[1, 0] + gj0[2] * Sc[2, 0])
            v_j02 = 2.0 * (gj0[0] * Sc[0, 2] + gj0[1] * Sc[1, 2] + gj0[2] * Sc[2, 2])
            v_j11 = 2.0 * (gj1[0] * Sc[0, 1] + gj1[1] * Sc[1, 1] + gj1[2] * Sc[2, 1])
            v_j12 = 2.0 * (gj1[0] * Sc[0, 2] + gj1[1] * Sc[1, 2] + gj1[2] * Sc[2, 2])
            vu, vv = v_means2d[b, c, n, 0], v_means2d[b, c, n, 1]
            vx = fx / z * vu
            vy = fy / z * vv
            vz = -(fx * x * vu + fy * y * vv) / z2 + v_depths[b, c, n]
            z3 = z2 * z
            vz += -fx / z2 * v_j00 - fy / z2 * v_j11 + 2.0 * fx * tx / z3 * v_j02 + 2.0 * fy * ty / z3 * v_j12
            v_tx = -fx / z2 * v_j02
            v_ty = -fy / z2 * v_j12
            if x_inside:
                vx += v_tx
            else:
                vz += v_tx * tx / z
            if y_inside:
                vy += v_ty
            else:
                vz += v_ty * ty / z
            # back to world: mean gradient R_vᵀ v, covariance gradient R_vᵀ G3 R_v
            vmx += V[0, 0] * vx + V[1, 0] * vy + V[2, 0] * vz
            vmy += V[0, 1] * vx + V[1, 1] * vy + V[2, 1] * vz
            vmz += V[0, 2] * vx + V[1, 2] * vy + V[2, 2] * vz
            for i in range(3):
                for j in range(3):
                    tmp[i, j] = G3[i, 0] * V[0, j] + G3[i, 1] * V[1, j] + G3[i, 2] * V[2, j]
            for i in range(3):
                for j in range(3):
                    v_sig[i, j] += V[0, i] * tmp[0, j] + V[1, i] * tmp[1, j] + V[2, i] * tmp[2, j]
        v_means[b, n, 0] = vmx
        v_means[b, n, 1] = vmy
        v_means[b, n, 2] = vmz
        # Σ = M Mᵀ → dL/dM = (V + Vᵀ) M; M = R diag(s)
        for j in range(3):
            acc = 0.0
            for i in range(3):
                vm = 0.0
                for k in range(3):
                    vm += (v_sig[i, k] + v_sig[k, i]) * M[k, j]
                vR[i, j] = vm * s[j]
                acc += vm * R[i, j]
            v_scales[b, n, j] = acc
        if qnorm > 0.0:
            x_, y_, z_ = qx, qy, qz
            gw = 2.0 * (
                -z_ * vR[0, 1] + y_ * vR[0, 2] + z_ * vR[1, 0] - x_ * vR[1, 2] - y_ * vR[2, 0] + x_ * vR[2, 1]
            )
            gx = 2.0 * (
                y_ * vR[0, 1]
                + z_ * vR[0, 2]
                + y_ * vR[1, 0]
                - 2.0 * x_ * vR[1, 1]
                - w * vR[1, 2]
                + z_ * vR[2, 0]
                + w * vR[2, 1]
                - 2.0 * x_ * vR[2, 2]
            )
            gy = 2.0 * (
                -2.0 * y_ * vR[0, 0]
                + x_ * vR[0, 1]
                + w * vR[0, 2]
                + x_ * vR[1, 0]
                + z_ * vR[1, 2]
                - w * vR[2, 0]
                + z_ * vR[2, 1]
                - 2.0 * y_ * vR[2, 2]
            )
            gz = 2.0 * (
                -2.0 * z_ * vR[0, 0]
                - w * vR[0, 1]
                + x_ * vR[0, 2]
                + w * vR[1, 0]
                - 2.0 * z_ * vR[1, 1]
                + y_ * vR[1, 2]
                + x_ * vR[2, 0]
                + y_ * vR[2, 1]
            )
            dot = w * gw + x_ * gx + y_ * gy + z_ * gz
            v_quats[b, n, 0] = (gw - w * dot) / qnorm
            v_quats[b, n, 1] = (gx - x_ * dot) / qnorm
            v_quats[b, n, 2] = (gy - y_ * dot) / qnorm
            v_quats[b, n, 3] = (gz - z_ * dot) / qnorm
        else:
            for k in range(4):
                v_quats[b, n, k] = 0.0


def project_arrays(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor | None,
    viewmats: Tensor,
    Ks: Tensor,
    opts: RenderOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the forward kernel without autograd: radii (int32), means2d, depths, conics (float64 numpy)."""
    B, N = means.shape[:2]
    C = viewmats.shape[1]
    radii = np.empty((B, C, N, 2), np.int32)
    means2d = np.empty((B, C, N, 2))
    depths = np.empty((B, C, N))
    conics = np.empty((B, C, N, 3))
    opac = f64(opacities) if opacities is not None else np.zeros((B, N))
    sizes = (
        float(opts.width),
        float(opts.height),
        float(opts.eps2d),
        float(opts.near_plane),
        float(opts.far_plane),
    )
    gauss = (f64(means), f64(quats), f64(scales), opac, opacities is not None, f64(viewmats), f64(Ks))
    launch(_project_fwd_kernel, jobs_for(B * N), *gauss, *sizes, radii, means2d, depths, conics)
    return radii, means2d, depths, conics


class ProjectFn(torch.autograd.Function):
    """Differentiable projection.

    Inputs: means ``[B, N, 3]``, quats ``[B, N, 4]``, scales ``[B, N, 3]``, opacities ``[B, N]`` or None
    (only tightens radii; not differentiated here), viewmats ``[B, C, 4, 4]``, Ks ``[B, C, 3, 3]``.
    Outputs in the dtype of ``means``: means2d ``[B, C, N, 2]``, depths ``[B, C, N]``, conics
    ``[B, C, N, 3]``, and radii ``[B, C, N, 2]`` int32 (not differentiable).
    """

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, opts: RenderOptions):
        radii, means2d, depths, conics = project_arrays(means, quats, scales, opacities, viewmats, Ks, opts)
        radii_t = torch.from_numpy(radii)
        ctx.opts = opts
        ctx.save_for_backward(means, quats, scales, viewmats, Ks, radii_t)
        ctx.mark_non_differentiable(radii_t)
        dtype = means.dtype
        return to_tensor(means2d, dtype), to_tensor(depths, dtype), to_tensor(conics, dtype), radii_t

    @staticmethod
    def backward(ctx, v_means2d, v_depths, v_conics, _v_radii):
        means, quats, scales, viewmats, Ks, radii = ctx.saved_tensors
        opts: RenderOptions = ctx.opts
        B, N = means.shape[:2]
        v_means = np.empty((B, N, 3))
        v_quats = np.empty((B, N, 4))
        v_scales = np.empty((B, N, 3))
        shape = tuple(radii.shape[:-1])

        def cot(v: Tensor | None, last: int) -> np.ndarray:
            return f64(v) if v is not None else np.zeros(shape + ((last,) if last else ()))

        sizes = (float(opts.width), float(opts.height), float(opts.eps2d))
        gauss = (f64(means), f64(quats), f64(scales), f64(viewmats), f64(Ks))
        cots = (cot(v_means2d, 2), cot(v_depths, 0), cot(v_conics, 3))
        outs = (v_means, v_quats, v_scales)
        launch(_project_bwd_kernel, jobs_for(B * N), *gauss, *sizes, radii.numpy(), *cots, *outs)
        likes = (means, quats, scales)
        grads = [
            to_tensor(a, t.dtype) if need else None
            for a, t, need in zip(outs, likes, ctx.needs_input_grad[:3], strict=True)
        ]
        return (*grads, None, None, None, None)
