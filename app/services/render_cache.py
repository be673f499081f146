"""Scenes kept on a worker's device between render requests (least recently used first out).

A scene is the job's ``splats.ply`` (loaded with ``renderer.io.splat_ply.load_splat_ply`` and moved to the
worker's device) plus its input cameras from ``cameras.json``. Only the worker's own thread touches the
tensors; the event loop only asks which jobs are cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class LoadedScene:
    gaussians: Any  # renderer.types.Gaussians on the worker's device
    world_to_camera: np.ndarray  # [S, 4, 4] input cameras
    K: np.ndarray  # [S, 3, 3] in pixels of each input image
    image_hw: list[tuple[int, int]]


def load_scene(artifacts: Path, device: str) -> LoadedScene:
    """Read ``splats.ply`` and ``cameras.json`` of a finished job."""
    from renderer.io.scene_layout import read_cameras
    from renderer.io.splat_ply import load_splat_ply

    frames, _ = read_cameras(artifacts)
    g = load_splat_ply(artifacts / "splats.ply").to(device)
    return LoadedScene(
        gaussians=g,
        world_to_camera=np.stack([f.world_to_camera for f in frames]),
        K=np.stack([f.K for f in frames]),
        image_hw=[(f.height, f.width) for f in frames],
    )


class SceneCache:
    def __init__(self, capacity: int, device: str) -> None:
        self.capacity = capacity
        self.device = device
        self._scenes: OrderedDict[str, LoadedScene] = OrderedDict()
        self._lock = threading.Lock()  # the device thread loads, request threads discard

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._scenes

    def __len__(self) -> int:
        return len(self._scenes)

    def get(self, job_id: str, artifacts: Path) -> LoadedScene:
        """The cached scene, or load it (evicting the least recently used one beyond capacity)."""
        with self._lock:
            scene = self._scenes.get(job_id)
            if scene is None:
                scene = load_scene(artifacts, self.device)
                self._scenes[job_id] = scene
                while len(self._scenes) > self.capacity:
                    self._scenes.popitem(last=False)
            self._scenes.move_to_end(job_id)
            return scene

    def discard(self, job_id: str) -> None:
        with self._lock:
            self._scenes.pop(job_id, None)
