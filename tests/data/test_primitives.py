"""Ray casting and texturing building blocks, checked against closed forms and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import models.data.render as render_mod
from models.data import make_scene, render_views
from models.data.primitives import (
    BOX,
    CYLINDER,
    PLANE,
    ROOM,
    SPHERE,
    PrimitiveTensors,
    bounding_radius,
    intersect,
    local_surface,
)
from models.data.textures import PROCEDURAL_KINDS, TextureStack, load_photo, procedural_texture


def _prims(shape, center, size, rotation=None):
    P = len(shape)
    rot = np.repeat(np.eye(3)[None], P, 0) if rotation is None else np.asarray(rotation)
    return PrimitiveTensors.from_numpy(
        np.asarray(shape), np.asarray(center, float), rot, np.asarray(size, float), np.zeros((P, 6), int),
        dtype=torch.float64,
    )  # fmt: skip


def _inside(code, p, size):
    """Signed-ish implicit test in the local frame: < 0 inside the solid."""
    if code == SPHERE:
        return np.linalg.norm(p, axis=-1) - size[0]
    if code in (BOX, ROOM):
        return np.max(np.abs(p) - size, axis=-1)
    if code == CYLINDER:
        return np.maximum(np.hypot(p[..., 0], p[..., 1]) - size[0], np.abs(p[..., 2]) - size[2])
    raise ValueError(code)


def test_closed_form_hits():
    o = torch.tensor([[0.0, 0.0, -5.0]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64)  # length 2: t is in units of |d|
    cases = [
        (SPHERE, [1, 1, 1], 2.0),  # z = -1
        (BOX, [1, 2, 0.5], 2.25),  # z = -0.5
        (CYLINDER, [1, 1, 3], 1.0),  # bottom cap z = -3
        (PLANE, [math.inf, 0, 0], 2.5),  # z = 0
        (ROOM, [1, 1, 4], 4.5),  # leaves through z = +4
    ]
    for code, size, t_expected in cases:
        t, idx = intersect(_prims([code], [[0, 0, 0]], [size]), o, d)
        assert t.item() == pytest.approx(t_expected, abs=1e-12), code
        assert idx.item() == 0
    # A disc of radius 1 is missed off its edge; an infinite plane is not.
    o2 = torch.tensor([[3.0, 0.0, 1.0]], dtype=torch.float64)
    d2 = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    assert math.isinf(intersect(_prims([PLANE], [[0, 0, 0]], [[1, 0, 0]]), o2, d2)[0].item())
    assert intersect(_prims([PLANE], [[0, 0, 0]], [[math.inf, 0, 0]]), o2, d2)[0].item() == pytest.approx(1.0)


@pytest.mark.parametrize("code", [SPHERE, BOX, CYLINDER])
def test_random_rays_hit_the_surface_first(code):
    rng = np.random.default_rng(code)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    size = np.array([0.7, 0.5, 0.9]) if code != SPHERE else np.full(3, 0.8)
    if code == CYLINDER:
        size[1] = size[0]
    center = np.array([0.3, -0.2, 0.5])
    prims = _prims([code], [center], [size], [q])
    origins = rng.normal(size=(1500, 3)) * 0.3 + np.array([0, 0, 4.0])
    targets = center + rng.uniform(-1.2, 1.2, size=(1500, 3))
    dirs = targets - origins
    t, _ = intersect(prims, torch.as_tensor(origins), torch.as_tensor(dirs))
    t = t.numpy()
    hit = np.isfinite(t)
    assert 0.2 < hit.mean() < 0.95
    local = lambda x: (x - center) @ q  # noqa: E731
    p = origins[hit] + t[hit, None] * dirs[hit]
    np.testing.assert_allclose(_inside(code, local(p), size), 0.0, atol=1e-9)  # on the surface
    # Brute force: march each ray; the first inside sample must come right after t (nothing earlier).
    ts = np.linspace(0, 1.5, 2001)
    samples = origins[:, None] + ts[None, :, None] * dirs[:, None]
    inside = _inside(code, local(samples), size) < 0
    first = np.where(inside.any(1), ts[np.argmax(inside, 1)], np.inf)
    assert not (np.isfinite(first) & ~hit).any()  # never a missed solid
    assert (hit & ~np.isfinite(first)).mean() < 0.01  # only grazing hits fall between march samples
    hit = hit & np.isfinite(first)
    np.testing.assert_allclose(first[hit], t[hit], atol=1.5 / 2000 + 1e-9)


def test_local_surface_normals_and_faces():
    p = torch.tensor([[0.0, 0.0, 2.0], [1.0, 0.2, 0.1], [0.0, -1.0, 0.0]], dtype=torch.float64)
    box = local_surface(BOX, p * torch.tensor([0.5, 1.0, 1.0], dtype=torch.float64), (0.5, 1.0, 1.0))
    assert box.face.tolist() == [5, 1, 2]
    room = local_surface(ROOM, torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64), (1.0, 1.0, 1.0))
    assert room.normal.tolist() == [[0.0, 0.0, 1.0]] and room.face.tolist() == [4]  # the floor faces up
    sph = local_surface(SPHERE, torch.tensor([[0.0, 0.6, 0.8]], dtype=torch.float64), (1.0, 1.0, 1.0))
    np.testing.assert_allclose(sph.normal.numpy(), [[0.0, 0.6, 0.8]])
    cyl = local_surface(
        CYLINDER, torch.tensor([[0.5, 0.0, 0.0], [0.1, 0.1, 2.0]], dtype=torch.float64), (0.5, 0.5, 2.0)
    )
    assert cyl.face.tolist() == [0, 5] and cyl.curved.tolist() == [True, False]


def test_bounding_radius_contains_the_primitive():
    size = np.array([[0.3, 0.3, 0.3], [0.2, 0.5, 0.4], [0.3, 0.3, 0.6], [5, 0, 0]])
    r = bounding_radius(np.array([SPHERE, BOX, CYLINDER, PLANE]), size)
    np.testing.assert_allclose(r[:3], [0.3, np.linalg.norm([0.2, 0.5, 0.4]), np.hypot(0.3, 0.6)])
    assert math.isinf(r[3])


def test_screen_rect_culling_changes_nothing(monkeypatch):
    scene = make_scene(2, views=2, width=64, height=48, kind="objects")
    monkeypatch.setattr(render_mod, "_screen_rect", lambda c, r, K, W, H: (0, H, 0, W))
    full = render_views(scene.spec, scene.world_to_camera, scene.K, 64, 48)
    np.testing.assert_array_equal(full.depth.numpy(), scene.depth)
    np.testing.assert_array_equal(full.rgb.numpy(), scene.images)


def test_texture_sampling_is_exact_at_texel_centres_and_mirrors():
    rng = np.random.default_rng(0)
    img = rng.random((1, 8, 8, 3)).astype(np.float32)
    stack = TextureStack.from_images(img)
    jj, ii = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    u = torch.as_tensor((ii.ravel() + 0.5) / 8, dtype=torch.float32)
    v = torch.as_tensor((jj.ravel() + 0.5) / 8, dtype=torch.float32)
    tex = torch.zeros(64, dtype=torch.long)
    lod0 = torch.zeros(64)
    np.testing.assert_allclose(stack.sample(tex, u, v, lod0).numpy(), img[0].reshape(-1, 3), atol=1e-6)
    # Mirrored repeat: u and 2 - u, and u + 2, read the same texel.
    np.testing.assert_allclose(stack.sample(tex, 2 - u, v, lod0).numpy(), img[0].reshape(-1, 3), atol=1e-6)
    np.testing.assert_allclose(
        stack.sample(tex, u + 2, v - 4, lod0).numpy(), img[0].reshape(-1, 3), atol=1e-5
    )
    # The coarsest level (4x4) at very large lod is the 2x2 block average of the 8x8 texture.
    coarse = stack.sample(tex, u, v, torch.full((64,), 50.0)).numpy()
    block = img[0].reshape(4, 2, 4, 2, 3).mean((1, 3))
    np.testing.assert_allclose(coarse[0], block[0, 0], atol=1e-6)


def test_textures_are_valid_images():
    for kind in PROCEDURAL_KINDS:
        t = procedural_texture(np.random.default_rng(1), kind, size=64)
        assert t.shape == (64, 64, 3) and t.dtype == np.float32
        assert 0 <= t.min() and t.max() <= 1 and t.std() > 0.01, kind
    photo = load_photo("chelsea", size=32)
    assert photo.shape == (32, 32, 3) and photo.std() > 0.05
    with pytest.raises(ValueError, match="name must be one of"):
        load_photo("lena")
    with pytest.raises(ValueError, match="kind must be one of"):
        procedural_texture(np.random.default_rng(0), "plaid")
