"""Random camera rigs: where the views of a procedural scene are taken from.

A :class:`Rig` holds the parameters of one scene's camera distribution (drawn once per scene), so the input
views and any number of extra (held-out) views come from the same distribution. Three rig types:

* ``lookat``: cameras on a spherical arc around a target (object orbits and object clusters): azimuth
  range, elevation, radius, with per-view jitter of radius, elevation and look-at point.
* ``forward``: cameras on a small rectangle, all facing roughly the same way (LLFF-style forward-facing).
* ``cluster``: cameras inside a ball (a person walking in a room), each looking at a jittered common target.

Cameras are OpenCV pinhole (see ``renderer.conventions``): square pixels, principal point at the image
centre, focal length from the field of view across the longer image side, a small random roll.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from renderer.conventions import fov_to_focal, look_at

__all__ = ["RIG_TYPES", "Rig", "intrinsics"]

RIG_TYPES = ("lookat", "forward", "cluster")


def intrinsics(fov: float, width: int, height: int) -> np.ndarray:
    """``K [3, 3]`` for a field of view ``fov`` (radians) across the longer side of a ``width×height`` image.

    Square pixels, principal point at the image centre.
    """
    f = fov_to_focal(fov, max(width, height))
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def _look_at(eye: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """World→camera ``[4, 4]`` looking from ``eye`` at ``target`` (+z up), rolled about the optical axis."""
    w2c = look_at(torch.as_tensor(eye, dtype=torch.float64), torch.as_tensor(target, dtype=torch.float64))
    w2c = w2c.numpy()
    c, s = math.cos(roll), math.sin(roll)
    roll_m = np.eye(4)
    roll_m[:2, :2] = [[c, -s], [s, c]]
    return roll_m @ w2c


def _stratified(rng: np.random.Generator, n: int, jitter: float) -> np.ndarray:
    """``n`` values in ``[0, 1)``: evenly spaced cells, each jittered by ``jitter`` of a cell."""
    return (np.arange(n) + 0.5 + jitter * (rng.random(n) - 0.5)) / n


@dataclass
class Rig:
    """One scene's camera distribution. ``params`` depends on ``type`` (see the ``_sample_*`` methods)."""

    type: str
    fov: float
    params: dict[str, float | list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in RIG_TYPES:
            raise ValueError(f"rig type must be one of {RIG_TYPES}, got {self.type!r}")

    def sample(
        self, rng: np.random.Generator, n: int, width: int, height: int, *, stratified: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` cameras.

        Args:
            rng: source of randomness.
            n: number of views (≥ 1).
            width, height: image size the intrinsics refer to.
            stratified: spread the views evenly over the rig (input views); otherwise draw them
                independently (extra views for novel-view evaluation).

        Returns:
            ``world_to_camera [n, 4, 4]`` and ``K [n, 3, 3]``, float64.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        fn = {"lookat": self._sample_lookat, "forward": self._sample_forward, "cluster": self._sample_cluster}
        eyes, targets = fn[self.type](rng, n, stratified)
        rolls = rng.normal(0.0, float(self.params.get("roll_std", 0.0)), n)
        w2c = np.stack([_look_at(e, t, r) for e, t, r in zip(eyes, targets, rolls, strict=True)])
        K = np.repeat(intrinsics(self.fov, width, height)[None], n, 0)
        return w2c, K

    # ``lookat``: target, target_jitter, radius, radius_jitter, elevation, elevation_jitter, elevation_min,
    # azimuth, arc (radians; 2π = closed orbit)
    def _sample_lookat(
        self, rng: np.random.Generator, n: int, stratified: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        arc = float(p["arc"])
        if stratified and n > 1:
            closed = arc >= 2 * math.pi - 1e-9
            frac = _stratified(rng, n, 0.3) if closed else np.linspace(0, 1, n) + rng.normal(0, 0.03, n)
        else:
            frac = rng.random(n) if n > 1 or not stratified else np.array([0.5])
        az = float(p["azimuth"]) + arc * frac
        el = float(p["elevation"]) + rng.normal(0, float(p["elevation_jitter"]), n)
        el = np.clip(el, float(p.get("elevation_min", -1.3)), 1.3)
        radius = float(p["radius"]) * np.exp(rng.normal(0, float(p["radius_jitter"]), n))
        target = np.asarray(p["target"], dtype=np.float64)
        eyes = target + radius[:, None] * np.stack(
            [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1
        )
        targets = target + rng.normal(0, float(p["target_jitter"]), (n, 3))
        return eyes, targets

    # ``forward``: center, yaw, pitch, baseline_x, baseline_z, angle_jitter, depth (distance looked at)
    def _sample_forward(
        self, rng: np.random.Generator, n: int, stratified: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        yaw, pitch = float(p["yaw"]), float(p["pitch"])
        fwd = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        up = np.cross(right, fwd)
        if stratified and n > 1:
            cols = math.ceil(math.sqrt(n))
            rows = math.ceil(n / cols)
            order = rng.permutation(rows * cols)[:n]
            gx = (order % cols + 0.5 + 0.4 * (rng.random(n) - 0.5)) / cols * 2 - 1
            gz = (order // cols + 0.5 + 0.4 * (rng.random(n) - 0.5)) / rows * 2 - 1
        else:
            gx, gz = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
        center = np.asarray(p["center"], dtype=np.float64)
        eyes = (
            center + gx[:, None] * float(p["baseline_x"]) * right + gz[:, None] * float(p["baseline_z"]) * up
        )
        depth = float(p["depth"])
        jit = float(p["angle_jitter"]) * depth
        targets = eyes + depth * fwd + rng.normal(0, jit, (n, 1)) * right + rng.normal(0, jit, (n, 1)) * up
        return eyes, targets

    # ``cluster``: center, spread (radius in xy), height_jitter, target, target_jitter, bounds (lo3 + hi3)
    def _sample_cluster(
        self, rng: np.random.Generator, n: int, stratified: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        if stratified and n > 1:
            ang = 2 * math.pi * _stratified(rng, n, 0.8) + rng.uniform(0, 2 * math.pi)
        else:
            ang = rng.uniform(0, 2 * math.pi, n)
        rad = float(p["spread"]) * np.sqrt(rng.uniform(0.05, 1.0, n))
        center = np.asarray(p["center"], dtype=np.float64)
        eyes = center + np.stack(
            [rad * np.cos(ang), rad * np.sin(ang), rng.normal(0, float(p["height_jitter"]), n)], -1
        )
        if "bounds" in p:
            bounds = np.asarray(p["bounds"], dtype=np.float64)
            eyes = np.clip(eyes, bounds[:3], bounds[3:])
        targets = np.asarray(p["target"], dtype=np.float64) + rng.normal(0, float(p["target_jitter"]), (n, 3))
        return eyes, targets
