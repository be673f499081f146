"""Scene recipes: how each kind of procedural scene is laid out (objects, materials, light, camera rig).

``make_spec(seed, kind)`` turns a seed into a :class:`~models.data.spec.SceneSpec`; it draws every random
number from one generator seeded by ``(seed, kind)``, so a scene is a pure function of its seed and kind.
World frame: z up, ground at ``z = 0``, lengths in metres.

* ``objects``: 3–8 textured objects on a large textured ground disc under a sky; cameras on an arc
  (20°–120°) looking at the cluster.
* ``orbit``: 1–3 objects floating or on a small turntable; cameras orbit them (90°–360°), sky all round.
* ``forward``: objects on the ground in front of a textured back wall (and sometimes side walls);
  forward-facing cameras on a small rectangle. Every pixel hits a surface.
* ``room``: furniture-like objects inside a closed textured room; cameras inside it, looking at a common
  region. Every pixel hits a surface.
"""

from __future__ import annotations

import math

import numpy as np

from models.data.primitives import BOX, CYLINDER, PLANE, ROOM, SPHERE, bounding_radius
from models.data.rigs import Rig
from models.data.spec import Materials, SceneSpec, TextureRecipe
from models.data.textures import PHOTO_NAMES, PROCEDURAL_KINDS, SURFACE_PHOTOS, random_color

__all__ = ["KINDS", "make_spec", "spec_rng"]

KINDS: tuple[str, ...] = ("objects", "room", "orbit", "forward")

_KIND_STREAM = {k: i for i, k in enumerate(KINDS)}
_GREY_PHOTOS = {"brick", "grass", "gravel", "camera", "coins", "moon", "page", "text", "clock"}


def spec_rng(seed: int, stream: int) -> np.random.Generator:
    """An independent generator for ``(seed, stream)``; streams keep scene layout and cameras apart."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def _yaw(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


class _Builder:
    """Accumulates textures, materials and primitives for one scene."""

    def __init__(self, rng: np.random.Generator, n_textures: int, surface_photo_bias: bool = False) -> None:
        self.rng = rng
        self.textures: list[TextureRecipe] = []
        self.mat: list[tuple[int, float, float, float, float, np.ndarray]] = []
        self.prims: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]] = []
        for _ in range(n_textures):
            self.textures.append(self._random_texture())
        # Surface textures (floors, walls, ground) drawn separately: texture-like photos or patterns.
        self.surface_textures = [self._random_texture(surface=True) for _ in range(2)]
        self.textures += self.surface_textures

    def _random_texture(self, surface: bool = False) -> TextureRecipe:
        rng = self.rng
        if rng.random() < 0.45:
            pool = SURFACE_PHOTOS if surface else PHOTO_NAMES
            return TextureRecipe("photo", str(rng.choice(pool)))
        pattern = str(rng.choice(PROCEDURAL_KINDS))
        return TextureRecipe("procedural", pattern, int(rng.integers(0, 2**31 - 1)))

    def material(self, tile: float, *, surface: bool = False) -> int:
        """A new material on a random texture of the scene; ``tile`` is the typical tile size in metres."""
        rng = self.rng
        n_obj = len(self.textures) - len(self.surface_textures)
        tex = n_obj + int(rng.integers(len(self.surface_textures))) if surface else int(rng.integers(n_obj))
        recipe = self.textures[tex]
        if recipe.source == "photo" and recipe.name in _GREY_PHOTOS:
            tint = random_color(rng, sat=(0.1, 0.6)) * rng.uniform(1.0, 1.4)
        else:
            tint = np.full(3, rng.uniform(0.85, 1.1)) + rng.normal(0, 0.04, 3)
        tint = np.clip(tint, 0.25, 1.3)
        self.mat.append(
            (
                tex,
                tile * math.exp(rng.uniform(-0.6, 0.6)),
                rng.uniform(0, 2 * math.pi),
                rng.random(),
                rng.random(),
                tint,
            )
        )
        return len(self.mat) - 1

    def add(
        self,
        shape: int,
        center: np.ndarray,
        rotation: np.ndarray,
        size: np.ndarray,
        faces: int | list[int],
        *,
        casts_shadow: bool,
    ) -> None:
        fm = (
            np.full(6, faces, dtype=np.int64) if isinstance(faces, int) else np.asarray(faces, dtype=np.int64)
        )
        self.prims.append(
            (
                shape,
                np.asarray(center, float),
                np.asarray(rotation, float),
                np.asarray(size, float),
                fm,
                casts_shadow,
            )
        )

    def add_object(self, scale: float, xy: np.ndarray, base_z: float | None, *, z: float = 0.0) -> float:
        """A random sphere, box or cylinder of size ~``scale``; rests on ``base_z`` if given, else centred at
        ``z``. Returns its footprint radius (for non-overlapping placement)."""
        rng = self.rng
        shape = int(rng.choice([SPHERE, BOX, CYLINDER], p=[0.3, 0.4, 0.3]))
        tile = scale * rng.uniform(0.3, 1.5)
        if shape == SPHERE:
            r = scale * rng.uniform(0.5, 1.0)
            size, rot, half_h, foot = np.full(3, r), _random_rotation(rng), r, r
            faces: int | list[int] = self.material(tile)
        elif shape == BOX:
            size = scale * rng.uniform(0.3, 1.0, 3)
            rot, half_h, foot = _yaw(rng.uniform(0, 2 * math.pi)), size[2], float(np.hypot(size[0], size[1]))
            faces = [self.material(tile) for _ in range(6)] if rng.random() < 0.3 else self.material(tile)
        else:
            r, h = scale * rng.uniform(0.3, 0.8), scale * rng.uniform(0.3, 1.2)
            size, rot, half_h, foot = np.array([r, r, h]), _yaw(rng.uniform(0, 2 * math.pi)), h, r
            side = self.material(tile)
            cap = self.material(tile) if rng.random() < 0.5 else side
            faces = [side, side, side, side, cap, cap]
        cz = base_z + half_h if base_z is not None else z
        self.add(shape, np.array([xy[0], xy[1], cz]), rot, size, faces, casts_shadow=True)
        return foot

    def scatter(
        self,
        n: int,
        scale_range: tuple[float, float],
        sample_xy,
        *,
        base_z: float | None = 0.0,
        avoid: list[tuple[np.ndarray, float]] | None = None,
        tries: int = 40,
    ) -> list[tuple[np.ndarray, float]]:
        """Place up to ``n`` objects at positions from ``sample_xy(rng)`` without footprint overlaps."""
        placed: list[tuple[np.ndarray, float]] = list(avoid or [])
        for _ in range(n):
            scale = self.rng.uniform(*scale_range)
            for _ in range(tries):
                xy = np.asarray(sample_xy(self.rng), float)
                foot = scale * 1.45  # upper bound of any object's footprint radius at this scale
                if all(np.hypot(*(xy - c)) > foot + r for c, r in placed):
                    placed.append((xy, self.add_object(scale, xy, base_z)))
                    break
        return placed

    def build(
        self,
        kind: str,
        seed: int,
        rig: Rig,
        *,
        indoor: bool,
        sky: tuple[np.ndarray, np.ndarray] | None = None,
        light_position: np.ndarray | None = None,
    ) -> SceneSpec:
        rng = self.rng
        el = (
            rng.uniform(math.radians(50), math.radians(85))
            if indoor
            else rng.uniform(math.radians(25), math.radians(75))
        )
        az = rng.uniform(0, 2 * math.pi)
        sun = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        warm = np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.75, 1.0)])
        sun_color = warm * rng.uniform(0.55, 0.85)
        ambient = np.array([rng.uniform(0.85, 1.0), rng.uniform(0.9, 1.0), 1.0]) * (
            rng.uniform(0.4, 0.55) if indoor else rng.uniform(0.35, 0.55)
        )
        if sky is None:
            horizon = np.clip(np.array([0.78, 0.85, 0.93]) + rng.normal(0, 0.05, 3), 0, 1)
            zenith = np.clip(np.array([0.35, 0.55, 0.85]) + rng.normal(0, 0.08, 3), 0, 1)
        else:
            horizon, zenith = sky
        m = np.array([(t, tile, a, ou, ov) for t, tile, a, ou, ov, _ in self.mat], dtype=np.float64)
        materials = Materials(
            texture=m[:, 0].astype(np.int64),
            tile=m[:, 1],
            angle=m[:, 2],
            offset=m[:, 3:5],
            tint=np.stack([tint for *_, tint in self.mat]),
        )
        return SceneSpec(
            kind=kind,
            seed=int(seed),
            shape=np.array([p[0] for p in self.prims], dtype=np.int64),
            center=np.stack([p[1] for p in self.prims]),
            rotation=np.stack([p[2] for p in self.prims]),
            size=np.stack([p[3] for p in self.prims]),
            face_material=np.stack([p[4] for p in self.prims]),
            casts_shadow=np.array([p[5] for p in self.prims], dtype=bool),
            materials=materials,
            textures=list(self.textures),
            sun_direction=sun,
            sun_color=sun_color,
            ambient=ambient,
            sky_horizon=horizon,
            sky_zenith=zenith,
            rig=rig,
            light_position=light_position,
        )


def _disc_sampler(radius: float, center: tuple[float, float] = (0.0, 0.0)):
    def sample(rng: np.random.Generator) -> np.ndarray:
        r, a = radius * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        return np.array([center[0] + r * math.cos(a), center[1] + r * math.sin(a)])

    return sample


# Plane orientations (local → world columns): ground faces up; walls face the given direction.
_UP = np.eye(3)


def _facing(normal: np.ndarray) -> np.ndarray:
    """Rotation whose local +z is ``normal`` (horizontal) and local +y is world +z."""
    n = np.asarray(normal, float)
    y = np.array([0.0, 0.0, 1.0])
    x = np.cross(y, n)
    return np.stack([x, y, n], 1)


def _objects(seed: int, rng: np.random.Generator) -> SceneSpec:
    b = _Builder(rng, int(rng.integers(3, 7)))
    b.add(
        PLANE,
        np.zeros(3),
        _UP,
        np.array([rng.uniform(15, 40), 0, 0]),
        b.material(rng.uniform(0.5, 2.0), surface=True),
        casts_shadow=False,
    )
    cluster = rng.uniform(0.8, 2.0)
    b.scatter(int(rng.integers(3, 9)), (0.35, 0.8), _disc_sampler(cluster))
    fov = math.radians(rng.uniform(40, 70))
    rig = Rig(
        "lookat",
        fov,
        {
            "target": [0.0, 0.0, rng.uniform(0.2, 0.6)],
            "target_jitter": 0.1 * cluster,
            "radius": (cluster + 1.0) * rng.uniform(1.1, 1.8) / math.tan(fov / 2) * 0.6,
            "radius_jitter": 0.08,
            "elevation": math.radians(rng.uniform(15, 50)),
            "elevation_jitter": math.radians(4),
            "elevation_min": math.radians(4),
            "azimuth": rng.uniform(0, 2 * math.pi),
            "arc": math.radians(rng.uniform(20, 120)),
            "roll_std": math.radians(2),
        },
    )
    return b.build("objects", seed, rig, indoor=False)


def _orbit(seed: int, rng: np.random.Generator) -> SceneSpec:
    b = _Builder(rng, int(rng.integers(2, 5)))
    turntable = rng.random() < 0.4
    main = rng.uniform(0.5, 1.0)
    base_z = 0.0 if turntable else None
    main_foot = b.add_object(main, np.zeros(2), base_z, z=0.0)
    for _ in range(int(rng.integers(0, 3))):
        a = rng.uniform(0, 2 * math.pi)
        small = main * rng.uniform(0.25, 0.5)
        d = main_foot + small * 1.45 + main * rng.uniform(0.05, 0.4)
        b.add_object(
            small, np.array([d * math.cos(a), d * math.sin(a)]), base_z, z=rng.uniform(-0.5, 0.5) * main
        )
    # Frame the main object (satellites may leave the frame, as in real object-centric captures).
    main_prim = b.prims[0]
    target = main_prim[1].copy()
    bound = float(bounding_radius(np.array([main_prim[0]]), main_prim[3][None])[0]) * rng.uniform(0.75, 1.1)
    if turntable:
        b.add(
            PLANE,
            np.zeros(3),
            _UP,
            np.array([bound * rng.uniform(1.2, 2.0), 0, 0]),
            b.material(main * 0.8, surface=True),
            casts_shadow=False,
        )
    fov = math.radians(rng.uniform(30, 60))
    full = rng.random() < 0.5
    rig = Rig(
        "lookat",
        fov,
        {
            "target": target.tolist(),
            "target_jitter": 0.04 * bound,
            # Frame the bounding sphere across the shorter image side too (fov is across the longer one).
            "radius": bound / math.sin(0.7 * fov / 2) * rng.uniform(0.85, 1.2),
            "radius_jitter": 0.05,
            "elevation": math.radians(rng.uniform(15, 50) if turntable else rng.uniform(-10, 50)),
            "elevation_jitter": math.radians(5),
            "elevation_min": math.radians(8) if turntable else -1.3,
            "azimuth": rng.uniform(0, 2 * math.pi),
            "arc": 2 * math.pi if full else math.radians(rng.uniform(90, 300)),
            "roll_std": math.radians(2),
        },
    )
    grey = random_color(rng, sat=(0.0, 0.35))
    return b.build("orbit", seed, rig, indoor=False, sky=(grey, np.clip(grey * rng.uniform(0.6, 1.1), 0, 1)))


def _forward(seed: int, rng: np.random.Generator) -> SceneSpec:
    b = _Builder(rng, int(rng.integers(3, 7)))
    depth = rng.uniform(4, 12)
    b.add(
        PLANE,
        np.zeros(3),
        _UP,
        np.array([math.inf, 0, 0]),
        b.material(rng.uniform(0.5, 2.0), surface=True),
        casts_shadow=False,
    )
    b.add(
        PLANE,
        np.array([0, depth, 0.0]),
        _facing([0, -1.0, 0]),
        np.array([math.inf, 0, 0]),
        b.material(rng.uniform(0.8, 3.0)),
        casts_shadow=False,
    )
    fov = math.radians(rng.uniform(50, 80))
    if rng.random() < 0.4:
        half_w = depth * rng.uniform(0.6, 1.2)
        wall = b.material(rng.uniform(0.8, 3.0), surface=True)
        b.add(
            PLANE,
            np.array([-half_w, 0, 0.0]),
            _facing([1.0, 0, 0]),
            np.array([math.inf, 0, 0]),
            wall,
            casts_shadow=False,
        )
        b.add(
            PLANE,
            np.array([half_w, 0, 0.0]),
            _facing([-1.0, 0, 0]),
            np.array([math.inf, 0, 0]),
            wall,
            casts_shadow=False,
        )

    def sample_xy(r: np.random.Generator) -> np.ndarray:
        y = r.uniform(1.8, depth - 0.4)
        return np.array([r.uniform(-1, 1) * y * math.tan(fov / 2) * 0.8, y])

    b.scatter(int(rng.integers(3, 10)), (0.2, 0.7), sample_xy, avoid=[(np.zeros(2), 1.0)])
    rig = Rig(
        "forward",
        fov,
        {
            "center": [0.0, 0.0, rng.uniform(0.5, 1.8)],
            "yaw": math.pi / 2 + math.radians(rng.normal(0, 5)),
            "pitch": -math.radians(rng.uniform(0, 20)),
            "baseline_x": depth * rng.uniform(0.02, 0.1),
            "baseline_z": depth * rng.uniform(0.01, 0.05),
            "angle_jitter": 0.02,
            "depth": depth / 2,
            "roll_std": math.radians(1.5),
        },
    )
    return b.build("forward", seed, rig, indoor=False)


def _room(seed: int, rng: np.random.Generator) -> SceneSpec:
    b = _Builder(rng, int(rng.integers(3, 7)))
    hx, hy, hz = rng.uniform(2, 4), rng.uniform(2, 4), rng.uniform(1.2, 1.7)
    floor = b.material(rng.uniform(0.4, 1.5), surface=True)
    ceiling = b.material(rng.uniform(0.8, 2.0))
    walls = (
        [b.material(rng.uniform(0.8, 2.5))] * 4
        if rng.random() < 0.6
        else [b.material(rng.uniform(0.8, 2.5)) for _ in range(4)]
    )
    b.add(
        ROOM,
        np.array([0, 0, hz]),
        np.eye(3),
        np.array([hx, hy, hz]),
        [*walls, floor, ceiling],
        casts_shadow=False,
    )
    cam = np.array(
        [rng.uniform(-0.5, 0.5) * hx, rng.uniform(-0.5, 0.5) * hy, rng.uniform(1.2, min(1.7, 2 * hz - 0.4))]
    )
    spread = rng.uniform(0.1, 0.8)
    a = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(1.5, 3.0)
    target = cam + np.array([dist * math.cos(a), dist * math.sin(a), -dist * rng.uniform(0.1, 0.4)])
    target = np.clip(target, [-hx + 0.3, -hy + 0.3, 0.2], [hx - 0.3, hy - 0.3, 2 * hz - 0.3])
    margin = 0.25
    b.scatter(
        int(rng.integers(3, 9)),
        (0.25, 0.6),
        lambda r: np.array([r.uniform(-hx + 0.9, hx - 0.9), r.uniform(-hy + 0.9, hy - 0.9)]),
        avoid=[(cam[:2], spread + 0.4)],
    )
    # Look at one of the objects (far enough away to frame it with the wall behind), if there is one.
    objects = [p[1] for p in b.prims[1:] if np.hypot(*(p[1][:2] - cam[:2])) > 1.2]
    if objects:
        target = objects[int(rng.integers(len(objects)))].copy()
    rig = Rig(
        "cluster",
        math.radians(rng.uniform(55, 85)),
        {
            "center": cam.tolist(),
            "spread": spread,
            "height_jitter": 0.05,
            "target": target.tolist(),
            "target_jitter": rng.uniform(0.1, 0.5),
            "bounds": [-hx + margin, -hy + margin, margin, hx - margin, hy - margin, 2 * hz - margin],
            "roll_std": math.radians(2),
        },
    )
    lamp = np.array([rng.uniform(-0.6, 0.6) * hx, rng.uniform(-0.6, 0.6) * hy, 2 * hz - 0.15])
    return b.build("room", seed, rig, indoor=True, light_position=lamp)


_RECIPES = {"objects": _objects, "room": _room, "orbit": _orbit, "forward": _forward}


def make_spec(seed: int, kind: str) -> SceneSpec:
    """The scene of kind ``kind`` for ``seed`` (pure function of both; no rendering)."""
    if kind not in _RECIPES:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return _RECIPES[kind](int(seed), spec_rng(seed, _KIND_STREAM[kind]))
