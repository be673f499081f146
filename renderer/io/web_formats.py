"""Compact splat formats for web viewers: antimatter15 ``.splat`` and Niantic ``.spz`` (version 3).

``.splat``: no header, 32 bytes per Gaussian — position 3×float32, linear scale 3×float32, RGBA 4×uint8
(``(0.5 + C0·f_dc)·255`` and ``opacity·255``), rotation 4×uint8 (unit wxyz quaternion ``·128 + 128``).
Sorted by ``volume × opacity``, largest first, as the reference converter does. No view dependence.

``.spz`` v3: the whole file gzipped; a 16-byte header (magic ``NGSP``, version 3, count, SH degree,
12 fractional bits, flags, reserved) then attribute blocks: positions (24-bit signed fixed point),
alphas (``sigmoid·255``), colours (``f_dc·0.15·255 + 127.5``), scales (``(log s + 10)·16``), rotations
(smallest three: 2-bit index of the largest |component| + 3 × (sign bit + 9-bit magnitude / √½)), SH
bands 1–3 (``coeff·128 + 128``, coefficient-major, RGB inner; degree-1 values rounded to 5 bits, higher to
4 bits, Niantic's defaults). SPZ stores the RUB frame (x right, y up, z back), so our OpenCV-style RDF data
is flipped on write and back on read (positions y, z; quaternion x/y/z signs; SH by the parity of each
basis function).
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

from renderer.io.scene_layout import atomic_write_bytes
from renderer.io.splat_ply import finite_rows
from renderer.types import SH_C0, Gaussians

SPZ_MAGIC = 0x5053474E  # "NGSP"
SPZ_VERSION = 3
#: zlib's default level: level 9 halves the speed for files ~0.2 % smaller (321k Gaussians: 0.48 s vs 0.98 s)
SPZ_GZIP_LEVEL = 6
_SPZ_FRACTIONAL_BITS = 12
_SPZ_COLOR_SCALE = 0.15
_SPZ_SH_BITS = (5, 4)  # degree 1, degrees 2-3
#: Sign of each SH coefficient (bands 1-3, 15 of them) under the RDF ⇄ RUB flip (y → -y, z → -z).
_SH_FLIP_RDF_RUB = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], np.float64)
_POS_FLIP = np.array([1.0, -1.0, -1.0])
_QUAT_FLIP = np.array([1.0, 1.0, -1.0, -1.0])  # wxyz


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _unit_quats(q: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(n > 0, q / np.where(n > 0, n, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------- .splat
def splat_bytes(g: Gaussians) -> bytes:
    """Encode ``g`` as antimatter15 ``.splat`` bytes (non-finite Gaussians dropped)."""
    keep = finite_rows(g)
    means, scales = _np(g.means)[keep], np.abs(_np(g.scales)[keep])
    opac, dc, quats = _np(g.opacities)[keep], _np(g.sh[:, 0])[keep], _unit_quats(_np(g.quats)[keep])
    order = np.argsort(-(scales.prod(1) * opac), kind="stable")
    rec = np.empty(
        len(order), dtype=[("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)]
    )
    rec["pos"] = means[order]
    rec["scale"] = scales[order]
    rec["rgba"][:, :3] = _u8((0.5 + SH_C0 * dc[order]) * 255)
    rec["rgba"][:, 3] = _u8(opac[order] * 255)
    rec["rot"] = _u8(quats[order] * 128 + 128)
    return rec.tobytes()


def save_splat(g: Gaussians, path: str | os.PathLike) -> Path:
    """Write :func:`splat_bytes` to ``path`` atomically."""
    atomic_write_bytes(path, splat_bytes(g))
    return Path(path)


# --------------------------------------------------------------------------------------------------- .spz
def _pack_smallest_three(q_xyzw: np.ndarray) -> np.ndarray:
    """``[N, 4]`` unit xyzw quaternions → ``[N, 4]`` bytes (little-endian uint32 per quaternion)."""
    largest = np.argmax(np.abs(q_xyzw), 1)
    sign = np.where(q_xyzw[np.arange(len(q_xyzw)), largest] < 0, -1.0, 1.0)
    q = q_xyzw * sign[:, None]  # largest component made positive
    comp = largest.astype(np.uint64)
    for i in range(4):
        mag = 511.0 * (np.abs(q[:, i]) / np.sqrt(0.5)) + 0.5  # truncated below, as the reference does
        bits = (np.minimum(mag, 511).astype(np.uint64)) | ((q[:, i] < 0).astype(np.uint64) << np.uint64(9))
        comp = np.where(largest == i, comp, (comp << np.uint64(10)) | bits)
    return comp.astype("<u4").view(np.uint8).reshape(-1, 4)


def _unpack_smallest_three(raw: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_pack_smallest_three`: ``[N, 4]`` bytes → ``[N, 4]`` unit xyzw quaternions."""
    comp = raw.reshape(-1, 4).copy().view("<u4")[:, 0].astype(np.int64)
    largest = comp >> 30
    q = np.zeros((len(comp), 4))
    for i in range(3, -1, -1):
        skip = largest == i
        mag = (comp & 511).astype(np.float64) / 511 * np.sqrt(0.5)
        val = np.where((comp >> 9) & 1, -mag, mag)
        q[:, i] = np.where(skip, 0.0, val)
        comp = np.where(skip, comp, comp >> 10)
    rows = np.arange(len(q))
    q[rows, largest] = np.sqrt(np.maximum(0.0, 1.0 - (q * q).sum(1)))
    return q


def _quantize_sh(x: np.ndarray, bits: int) -> np.ndarray:
    bucket = 1 << (8 - bits)
    q = np.round(x * 128.0) + 128.0
    q = np.floor((q + bucket // 2) / bucket) * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def spz_bytes(g: Gaussians) -> bytes:
    """Encode ``g`` as gzipped SPZ version 3 (RUB frame inside; non-finite Gaussians dropped).

    Raises:
        ValueError: a position beyond ±2048 (SPZ's 24-bit fixed point with 12 fractional bits).
    """
    keep = finite_rows(g)
    n, K = int(keep.sum()), g.sh.shape[1]
    degree = g.sh_degree
    means = _np(g.means)[keep] * _POS_FLIP
    limit = 2 ** (23 - _SPZ_FRACTIONAL_BITS)
    if n and np.abs(means).max() >= limit:
        raise ValueError(
            f"spz_bytes: positions must lie within ±{limit} (SPZ fixed point), got {np.abs(means).max()}"
        )
    fixed = np.round(means * (1 << _SPZ_FRACTIONAL_BITS)).astype("<i4")
    positions = fixed.view(np.uint8).reshape(n, 3, 4)[:, :, :3]  # low 24 bits, little-endian
    alphas = _u8(_np(g.opacities)[keep] * 255)
    sh = _np(g.sh)[keep]
    colors = _u8(sh[:, 0] * (_SPZ_COLOR_SCALE * 255) + 127.5)
    scales = _u8((np.log(np.maximum(np.abs(_np(g.scales)[keep]), 1e-30)) + 10.0) * 16.0)
    q = _unit_quats(_np(g.quats)[keep]) * _QUAT_FLIP
    rotations = _pack_smallest_three(np.concatenate([q[:, 1:], q[:, :1]], 1))
    rest = sh[:, 1:K] * _SH_FLIP_RDF_RUB[: K - 1, None]
    sh_bytes = np.empty(rest.shape, np.uint8)
    sh_bytes[:, :3] = _quantize_sh(rest[:, :3], _SPZ_SH_BITS[0])
    sh_bytes[:, 3:] = _quantize_sh(rest[:, 3:], _SPZ_SH_BITS[1])
    header = struct.pack("<IIIBBBB", SPZ_MAGIC, SPZ_VERSION, n, degree, _SPZ_FRACTIONAL_BITS, 0, 0)
    blocks = [positions, alphas, colors, scales, rotations, sh_bytes]
    payload = header + b"".join(np.ascontiguousarray(b).tobytes() for b in blocks)
    return gzip.compress(payload, compresslevel=SPZ_GZIP_LEVEL, mtime=0)


def save_spz(g: Gaussians, path: str | os.PathLike) -> Path:
    """Write :func:`spz_bytes` to ``path`` atomically."""
    atomic_write_bytes(path, spz_bytes(g))
    return Path(path)


def load_spz(source: str | os.PathLike | bytes) -> Gaussians:
    """Decode an SPZ file (version 2 or 3, gzip container) into activated float32 :class:`Gaussians`.

    Args:
        source: a path or the file's bytes.

    Raises:
        ValueError: not gzip, wrong magic, unsupported version or SH degree, or truncated; the message
            names the source.
    """
    name = "<bytes>" if isinstance(source, bytes | bytearray) else str(source)
    raw = bytes(source) if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise ValueError(f"{name}: not a gzip-compressed SPZ file ({e})") from e
    if len(data) < 16:
        raise ValueError(f"{name}: SPZ header truncated ({len(data)} bytes, need 16)")
    magic, version, n, degree, frac_bits, _flags, _ = struct.unpack_from("<IIIBBBB", data)
    if magic != SPZ_MAGIC:
        raise ValueError(f"{name}: bad SPZ magic 0x{magic:08x} (expected 0x{SPZ_MAGIC:08x} 'NGSP')")
    if version not in (2, 3):
        raise ValueError(f"{name}: SPZ version {version} is not supported (2 and 3 are)")
    if degree > 3:
        raise ValueError(f"{name}: SH degree {degree} is not supported (0-3)")
    K = (degree + 1) ** 2
    rot_bytes = 4 if version == 3 else 3
    sizes = [9 * n, n, 3 * n, 3 * n, rot_bytes * n, 3 * (K - 1) * n]
    if len(data) < 16 + sum(sizes):
        raise ValueError(
            f"{name}: SPZ data truncated ({len(data) - 16} bytes for {n} Gaussians, need {sum(sizes)})"
        )
    blocks, offset = [], 16
    for size in sizes:
        blocks.append(np.frombuffer(data, np.uint8, size, offset))
        offset += size
    pos_raw, alphas, colors, scales, rot_raw, sh_raw = blocks
    p = pos_raw.reshape(n, 3, 3).astype(np.int32)
    fixed = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    means = fixed / float(1 << frac_bits) * _POS_FLIP
    if version == 3:
        q_xyzw = _unpack_smallest_three(rot_raw)
    else:
        xyz = rot_raw.reshape(n, 3) / 127.5 - 1.0
        q_xyzw = np.concatenate([xyz, np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(1)))[:, None]], 1)
    quats = np.concatenate([q_xyzw[:, 3:], q_xyzw[:, :3]], 1) * _QUAT_FLIP
    sh = np.empty((n, K, 3))
    sh[:, 0] = (colors.reshape(n, 3) / 255.0 - 0.5) / _SPZ_COLOR_SCALE
    sh[:, 1:] = (sh_raw.reshape(n, K - 1, 3) - 128.0) / 128.0 * _SH_FLIP_RDF_RUB[: K - 1, None]

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, np.float32))

    return Gaussians(
        means=t(means),
        quats=t(quats),
        scales=t(np.exp(scales.reshape(n, 3) / 16.0 - 10.0)),
        opacities=t(alphas / 255.0),
        sh=t(sh),
    )
