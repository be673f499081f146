"""The ground truth one benchmark scene provides: input views and, optionally, held-out target views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GroundTruth"]


@dataclass
class GroundTruth:
    """Exact ground truth of ``S`` input views (and ``T`` held-out targets for novel-view synthesis).

    Attributes:
        images: ``[S, H, W, 3]`` float32 in [0, 1].
        depth: ``[S, H, W]`` z-depth (0 where unknown).
        valid: ``[S, H, W]`` bool, pixels with ground-truth depth.
        K: ``[S, 3, 3]`` intrinsics at ``H×W`` (pixel centres at +0.5).
        world_to_camera: ``[S, 4, 4]``.
        target_images, target_K, target_world_to_camera: ``[T, H, W, 3]``, ``[T, 3, 3]``, ``[T, 4, 4]``
            held-out views in the same world frame (``None`` when the scene has none).
        name: label in reports.
    """

    images: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    K: np.ndarray
    world_to_camera: np.ndarray
    name: str = "scene"
    target_images: np.ndarray | None = None
    target_K: np.ndarray | None = None
    target_world_to_camera: np.ndarray | None = None

    def __post_init__(self) -> None:
        S, H, W = self.depth.shape
        expected = {
            "images": (S, H, W, 3),
            "valid": (S, H, W),
            "K": (S, 3, 3),
            "world_to_camera": (S, 4, 4),
        }
        for key, shape in expected.items():
            got = np.shape(getattr(self, key))
            if got != shape:
                raise ValueError(f"GroundTruth.{key} must have shape {list(shape)}, got {list(got)}")
        targets = (self.target_images, self.target_K, self.target_world_to_camera)
        if any(t is not None for t in targets) and any(t is None for t in targets):
            raise ValueError("GroundTruth target_images, target_K and target_world_to_camera go together")

    @property
    def num_views(self) -> int:
        return int(self.depth.shape[0])

    @property
    def has_targets(self) -> bool:
        return self.target_images is not None and len(self.target_images) > 0
