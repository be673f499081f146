"""The description of one procedural scene: geometry, materials, textures, lighting and camera rig.

A :class:`SceneSpec` is everything needed to render the scene from *any* camera (see
:func:`models.data.render.render_views`), which is how held-out target views for novel-view evaluation are
made. It is small (a few dozen numbers per primitive) and is fully determined by ``(seed, kind)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from models.data.primitives import PrimitiveTensors
from models.data.rigs import Rig
from models.data.textures import (
    TEXTURE_SIZE,
    TextureStack,
    cached_photo_pyramid,
    mip_pyramid,
    procedural_texture,
)

__all__ = ["Materials", "SceneSpec", "TextureRecipe"]


@dataclass(frozen=True)
class TextureRecipe:
    """How to make one texture: a bundled photo (``source="photo"``, ``name``) or a procedural pattern
    (``source="procedural"``, ``name`` = pattern kind, ``seed`` = its random seed)."""

    source: str
    name: str
    seed: int = 0

    def build(self) -> np.ndarray:
        """``[S, S, 3]`` float32 texture."""
        return self.pyramid()[0]

    def pyramid(self) -> list[np.ndarray] | tuple[np.ndarray, ...]:
        """The texture's mip levels (photos are decoded and filtered once per process)."""
        if self.source == "photo":
            return cached_photo_pyramid(self.name)
        if self.source == "procedural":
            # Patterns are drawn at half resolution (4× cheaper) and doubled: at the image sizes used
            # here a tile rarely spans more than 128 pixels, so level 0 is seldom magnified.
            half = procedural_texture(np.random.default_rng(self.seed), self.name, size=TEXTURE_SIZE // 2)
            return mip_pyramid(half.repeat(2, axis=0).repeat(2, axis=1))
        raise ValueError(f"texture source must be 'photo' or 'procedural', got {self.source!r}")


@dataclass
class Materials:
    """``M`` Lambertian materials: a texture scaled, rotated, shifted and tinted.

    Attributes:
        texture: ``[M]`` int index into the scene's texture list.
        tile: ``[M]`` world units covered by one texture tile.
        angle: ``[M]`` rotation of the texture on flat faces (radians).
        offset: ``[M, 2]`` shift in tile units.
        tint: ``[M, 3]`` RGB multiplier.
    """

    texture: np.ndarray
    tile: np.ndarray
    angle: np.ndarray
    offset: np.ndarray
    tint: np.ndarray

    def __len__(self) -> int:
        return int(self.texture.shape[0])


@dataclass
class SceneSpec:
    """One scene.

    Attributes:
        kind: generator kind ("objects", "room", "orbit", "forward").
        seed: the seed it was made from.
        shape, center, rotation, size, face_material, casts_shadow: ``P`` primitives (see
            :mod:`models.data.primitives`): ``[P]``, ``[P, 3]``, ``[P, 3, 3]``, ``[P, 3]``, ``[P, 6]``,
            ``[P]``.
        materials: the materials the faces refer to.
        textures: recipes of the textures the materials refer to.
        sun_direction: ``[3]`` unit vector towards the directional light (ignored with ``light_position``).
        sun_color, ambient: ``[3]`` RGB light intensities (direct and ambient).
        sky_horizon, sky_zenith: ``[3]`` background colours where rays escape (those pixels are invalid).
        rig: the camera distribution of this scene.
        light_position: ``[3]`` world position of a point light replacing the sun (indoor scenes), or None.
    """

    kind: str
    seed: int
    shape: np.ndarray
    center: np.ndarray
    rotation: np.ndarray
    size: np.ndarray
    face_material: np.ndarray
    casts_shadow: np.ndarray
    materials: Materials
    textures: list[TextureRecipe]
    sun_direction: np.ndarray
    sun_color: np.ndarray
    ambient: np.ndarray
    sky_horizon: np.ndarray
    sky_zenith: np.ndarray
    rig: Rig
    light_position: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def primitives(self, device: torch.device | str | None = None) -> PrimitiveTensors:
        """All primitives as float32 tensors on ``device``."""
        return PrimitiveTensors.from_numpy(
            self.shape, self.center, self.rotation, self.size, self.face_material, device=device
        )

    def texture_stack(self, device: torch.device | str | None = None) -> TextureStack:
        """The scene's textures with mip pyramids on ``device`` (built once per device and cached)."""
        key = str(torch.device(device) if device is not None else torch.device("cpu"))
        if key not in self._cache:
            self._cache[key] = TextureStack([r.pyramid() for r in self.textures], device=device)
        return self._cache[key]

    @property
    def num_primitives(self) -> int:
        return int(self.shape.shape[0])
