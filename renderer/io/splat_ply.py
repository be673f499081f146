"""3D Gaussian Splatting PLY (the INRIA layout), the interchange format of the field.

One ``element vertex N`` of little-endian float32 properties, in this order::

    x y z  nx ny nz  f_dc_0..2  f_rest_0..(3·(K-1)-1)  opacity  scale_0..2  rot_0..3

with *raw* parameters: ``opacity`` is a logit, ``scale_i`` the log of the standard deviation, ``rot`` a
wxyz quaternion (not necessarily unit), ``f_dc`` the SH DC coefficient (colour = 0.5 + C0·f_dc) and
``f_rest`` the higher bands channel-major (all R coefficients, then G, then B). Normals are written as 0.
The loader accepts any property order, extra properties, float or double, missing normals, ASCII or binary
PLY (as written by gsplat, INRIA, SuperSplat, Open3D …) and names the property when one is missing.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData

from renderer.io.scene_layout import atomic_write_bytes
from renderer.types import Gaussians

log = logging.getLogger("renderer")

#: SH bases (K) for each accepted count of ``f_rest_*`` properties.
_K_FOR_REST = {0: 1, 9: 4, 24: 9, 45: 16}
_REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2"]
_REQUIRED += ["rot_0", "rot_1", "rot_2", "rot_3"]
#: Activated values are clamped here before the logit / log so files never hold ±inf.
_OPACITY_EPS = 1e-7
_MIN_SCALE = 1e-12


def finite_rows(g: Gaussians) -> np.ndarray:
    """``[N]`` bool: Gaussians whose every parameter is finite (exporters drop the others, and log it)."""
    ok = np.ones(len(g), bool)
    for t in (g.means, g.quats, g.scales, g.opacities[:, None], g.sh.flatten(1)):
        ok &= np.isfinite(t.detach().cpu().numpy()).all(1)
    if not ok.all():
        log.warning(
            "renderer: dropping %d Gaussians with non-finite parameters from an export", int((~ok).sum())
        )
    return ok


def _raw_columns(g: Gaussians) -> tuple[list[str], np.ndarray]:
    """Property names and the ``[N, P]`` float32 table of raw (pre-activation) values."""
    keep = finite_rows(g)
    sh = g.sh.detach().cpu().double().numpy()[keep]
    n, K = sh.shape[0], sh.shape[1]
    o = np.clip(g.opacities.detach().cpu().double().numpy()[keep], _OPACITY_EPS, 1 - _OPACITY_EPS)
    cols = [
        g.means.detach().cpu().double().numpy()[keep],
        np.zeros((n, 3)),
        sh[:, 0, :],
        sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (K - 1)),  # channel-major
        np.log(o / (1 - o))[:, None],
        np.log(np.maximum(np.abs(g.scales.detach().cpu().double().numpy()[keep]), _MIN_SCALE)),
        g.quats.detach().cpu().double().numpy()[keep],
    ]
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * (K - 1))]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    return names, np.concatenate(cols, 1).astype("<f4")


def splat_ply_bytes(g: Gaussians) -> bytes:
    """Encode ``g`` as an INRIA-layout binary PLY (SH degree of ``g``; non-finite Gaussians dropped)."""
    names, table = _raw_columns(g)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {table.shape[0]}"]
    header += [f"property float {name}" for name in names]
    header.append("end_header")
    return ("\n".join(header) + "\n").encode("ascii") + np.ascontiguousarray(table).tobytes()


def save_splat_ply(g: Gaussians, path: str | os.PathLike) -> Path:
    """Write :func:`splat_ply_bytes` to ``path`` atomically; returns the path."""
    atomic_write_bytes(path, splat_ply_bytes(g))
    return Path(path)


def load_splat_ply(path: str | os.PathLike) -> Gaussians:
    """Read a 3DGS PLY into activated :class:`Gaussians` (float32; exp scales, sigmoid opacities).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a PLY, no ``vertex`` element, a required property missing or not numeric, or an
            ``f_rest_*`` count that is not 0, 9, 24 or 45; the message names the file and the property.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        ply = PlyData.read(str(path))
    except Exception as e:  # plyfile raises several types for malformed headers and bodies
        raise ValueError(f"{path}: not a readable PLY file ({type(e).__name__}: {e})") from e
    if "vertex" not in ply:
        raise ValueError(f"{path}: no 'vertex' element (a 3DGS PLY stores one row per Gaussian there)")
    vertex = ply["vertex"]
    names = [p.name for p in vertex.properties]
    for name in _REQUIRED:
        if name not in names:
            raise ValueError(
                f"{path}: vertex property '{name}' is missing (a 3DGS PLY needs x, y, z, f_dc_0..2, opacity, "
                f"scale_0..2, rot_0..3)"
            )
    rest = sorted((n for n in names if re.fullmatch(r"f_rest_\d+", n)), key=lambda n: int(n[7:]))
    if len(rest) not in _K_FOR_REST:
        raise ValueError(
            f"{path}: found {len(rest)} f_rest_* properties; expected 0, 9, 24 or 45 (SH degree 0-3)"
        )
    if rest != [f"f_rest_{i}" for i in range(len(rest))]:
        raise ValueError(f"{path}: f_rest_* properties are not numbered 0..{len(rest) - 1}")

    def column(name: str) -> np.ndarray:
        data = vertex[name]
        if data.dtype.kind not in "fiu":
            raise ValueError(f"{path}: vertex property '{name}' is not numeric (got {data.dtype})")
        return np.asarray(data, np.float64)

    def stack(props: list[str]) -> np.ndarray:
        return np.stack([column(p) for p in props], -1) if props else np.zeros((vertex.count, 0))

    n, K = vertex.count, _K_FOR_REST[len(rest)]
    dc = stack(["f_dc_0", "f_dc_1", "f_dc_2"])
    higher = stack(rest).reshape(n, 3, K - 1).transpose(0, 2, 1)
    sh = np.concatenate([dc[:, None, :], higher], 1)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, np.float32))

    return Gaussians(
        means=t(stack(["x", "y", "z"])),
        quats=t(stack(["rot_0", "rot_1", "rot_2", "rot_3"])),
        scales=t(np.exp(stack(["scale_0", "scale_1", "scale_2"]))),
        opacities=t(1.0 / (1.0 + np.exp(-column("opacity")))),
        sh=t(sh),
    )
