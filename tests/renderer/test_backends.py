"""Backend choice, CPU fallback with a logged reason, warm-up, and (with CUDA) gsplat against the CPU."""

from __future__ import annotations

import logging

import pytest
import torch

from renderer import rasterize, render_gaussians, warmup
from renderer.backends import resolve_backend
from renderer.backends.gsplat_cuda import gsplat_status
from renderer.types import Gaussians
from tests.renderer.brute_force import psnr
from tests.renderer.scenes import make_scene

GSPLAT_OK, GSPLAT_REASON = gsplat_status()


def test_auto_picks_cpu_for_cpu_tensors():
    assert resolve_backend("auto", torch.device("cpu"))[0] == "cpu"
    _, _, meta = rasterize(*make_scene(n=10, width=8, height=8).args())
    assert meta.backend == "cpu"


@pytest.mark.skipif(GSPLAT_OK, reason="gsplat works here; the fallback path is not taken")
def test_auto_falls_back_to_cpu_for_cuda_tensors_and_logs_why_once(caplog, monkeypatch):
    monkeypatch.setattr("renderer.backends._warned", set())
    with caplog.at_level(logging.WARNING, logger="renderer"):
        name, reason = resolve_backend("auto", torch.device("cuda"))
        assert resolve_backend("auto", torch.device("cuda")) == (name, reason)
    assert name == "cpu" and reason == GSPLAT_REASON
    logged = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
    assert logged == [f"renderer: falling back to the CPU rasterizer for CUDA inputs: {reason}"]


def test_explicit_gsplat_without_cuda_names_the_problem():
    with pytest.raises(ValueError, match="backend='gsplat' needs CUDA tensors, got tensors on cpu"):
        resolve_backend("gsplat", torch.device("cpu"))
    if not GSPLAT_OK:
        with pytest.raises(RuntimeError, match="backend='gsplat' is unavailable: "):
            resolve_backend("gsplat", torch.device("cuda"))


def test_torch_backend_is_the_twin_and_agrees():
    s = make_scene(seed=14, n=40, width=20, height=16, sh_degree=1)
    fast, fa, _ = rasterize(*s.args(), sh_degree=1, backend="cpu")
    slow, sa, meta = rasterize(*s.args(), sh_degree=1, backend="torch")
    assert meta.backend == "torch"
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)


def test_warmup_returns_the_backend_and_render_gaussians_shapes():
    assert warmup("cpu") == "cpu"
    s = make_scene(seed=15, n=30, cameras=3, width=20, height=16, sh_degree=2)
    g = Gaussians(s.means, s.quats, s.scales, s.opacities, s.colors[:, :9])
    out = render_gaussians(g, s.viewmats, s.Ks, 20, 16, background=torch.tensor([1.0, 1.0, 1.0]))
    assert (
        out.rgb.shape == (3, 16, 20, 3) and out.alpha.shape == (3, 16, 20) and out.depth.shape == (3, 16, 20)
    )
    hit = out.alpha > 0.5
    assert hit.any() and ((out.depth[hit] > 3.0) & (out.depth[hit] < 5.5)).all()  # cameras are 4 units away
    assert (out.depth[out.alpha == 0] == 0).all()
    with pytest.raises(ValueError, match="background must have shape \\[3\\] or \\[C, 3\\]"):
        render_gaussians(g, s.viewmats, s.Ks, 20, 16, background=torch.zeros(2))


@pytest.mark.gpu
@pytest.mark.skipif(not GSPLAT_OK, reason=f"gsplat backend unavailable: {GSPLAT_REASON}")
@pytest.mark.parametrize("mode", ["RGB", "RGB+ED"])
def test_gsplat_matches_cpu_backend(mode):
    s = make_scene(
        seed=16, n=500, cameras=2, batch=(2,), width=64, height=48, sh_degree=3, dtype=torch.float32
    )
    cpu, cpu_alpha, _ = rasterize(*s.args(), sh_degree=3, render_mode=mode, backend="cpu")
    cuda_args = [t.cuda() if isinstance(t, torch.Tensor) else t for t in s.args()]
    gpu, gpu_alpha, meta = rasterize(*cuda_args, sh_degree=3, render_mode=mode, backend="auto")
    assert meta.backend == "gsplat"
    assert psnr(gpu[..., :3].cpu().numpy(), cpu[..., :3].numpy()) > 40
    assert psnr(gpu_alpha.cpu().numpy(), cpu_alpha.numpy()) > 40
