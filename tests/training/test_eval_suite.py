"""The evaluation pipeline end to end: scoring an exact reconstruction, the CLI on tiny scenes, bad input."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from app.cli import main
from models.data.procedural import save_scene
from models.eval.scoring import gt_world_points, score_reconstruction
from models.eval.suite import procedural_ground_truth
from models.gaussians import GaussianOptions, pixel_gaussians


def _exact_reconstruction(gt, scale: float) -> SimpleNamespace:
    """The ground truth itself, expressed in a world scaled by ``scale`` (what a perfect scale-free model
    could output), with Gaussians made from the true depth by the training-free path."""
    w2c = gt.world_to_camera.copy()
    w2c[:, :3, 3] *= scale
    depth = gt.depth * scale
    g = pixel_gaussians(
        torch.from_numpy(depth).float(), torch.full(depth.shape, 10.0), torch.from_numpy(gt.images),
        torch.from_numpy(gt.K).float(), torch.from_numpy(w2c).float(), torch.from_numpy(gt.valid),
        options=GaussianOptions(drop_fraction=0.0, scale_factor=1.0),
    )  # fmt: skip
    return SimpleNamespace(
        num_views=gt.num_views, world_to_camera=w2c, K=gt.K, K_model=gt.K, depth=depth,
        valid=np.ones_like(gt.valid), world_points=np.nan_to_num(gt_world_points(gt)) * scale, gaussians=g,
    )  # fmt: skip


def test_an_exact_reconstruction_scores_perfectly() -> None:
    gt = procedural_ground_truth(seed=5, views=3, size=56, targets=2)
    m = score_reconstruction(_exact_reconstruction(gt, scale=0.37), gt)
    assert m["auc30"] == pytest.approx(1.0)
    assert m["abs_rel_median"] == pytest.approx(0.0, abs=1e-6)
    assert m["abs_rel_global"] == pytest.approx(0.0, abs=1e-6)
    assert m["delta1_global"] == 1.0
    assert m["sim3_scale"] == pytest.approx(1 / 0.37)
    assert m["chamfer"] == pytest.approx(0.0, abs=1e-6)
    # Novel views rendered from true-depth Gaussians carried into the scaled frame: clearly image-like.
    assert m["psnr"] > 15.0 and m["ssim"] > 0.3


def test_given_cameras_score_depth_in_their_units() -> None:
    """Depth from a run given the true cameras is also scored as it is: a scale error counts there and
    nowhere else."""
    gt = procedural_ground_truth(seed=5, views=3, size=56, targets=0)
    exact = score_reconstruction(_exact_reconstruction(gt, scale=1.0), gt, given_cameras=True)
    assert exact["abs_rel_given"] == pytest.approx(0.0, abs=1e-6) and exact["delta1_given"] == 1.0
    scaled = score_reconstruction(_exact_reconstruction(gt, scale=0.37), gt, given_cameras=True)
    assert scaled["abs_rel_given"] == pytest.approx(0.63) and scaled["delta1_given"] == 0.0
    assert scaled["abs_rel_median"] == pytest.approx(0.0, abs=1e-6)
    assert "abs_rel_given" not in score_reconstruction(_exact_reconstruction(gt, scale=1.0), gt)


def test_cli_eval_with_given_cameras_fits_depth_to_them(tmp_path) -> None:
    """``--given-cameras`` on a forward rig (seed 3) with the built-in weights: the camera-centre fit
    leaves depth far from the cameras' units; fitted to them it is close."""
    out = tmp_path / "given"
    rc = main([
        "eval", "--suite", "procedural", "--scenes", "1", "--seed-offset", "3", "--views", "4",
        "--targets", "1", "--given-cameras", "--no-colmap", "--threads", "1", "--out", str(out),
    ])  # fmt: skip
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in doc["rows"]}
    assert set(rows) == {"onepass", "onepass+cameras", "onepass+cameras+refine"}
    assert rows["onepass+cameras"]["auc30"] == pytest.approx(1.0)
    before, after = rows["onepass+cameras"]["abs_rel_given"], rows["onepass+cameras+refine"]["abs_rel_given"]
    assert after < 0.15 and after < 0.5 * before, (before, after)
    assert "abs_rel_given" not in rows["onepass"]
    md = (out / "results.md").read_text()
    assert "## with the true cameras given" in md and "| onepass+cameras+refine | 4 | 1 |" in md


def test_a_wrong_depth_scores_worse() -> None:
    gt = procedural_ground_truth(seed=5, views=3, size=56, targets=0)
    rec = _exact_reconstruction(gt, scale=1.0)
    rec.depth = rec.depth * np.linspace(0.5, 1.5, rec.depth.shape[-1])  # depth distorted across the image
    m = score_reconstruction(rec, gt)
    assert 0.1 < m["abs_rel_median"] < 0.5
    assert np.isnan(m["psnr"])  # no targets, no novel-view score


def test_cli_eval_on_two_tiny_scenes_writes_json_table_and_plots(tmp_path, capsys) -> None:
    out = tmp_path / "ev"
    rc = main([
        "eval", "--suite", "procedural", "--scenes", "2", "--views", "2", "--size", "56", "--targets", "1",
        "--weights", "random", "--no-colmap", "--threads", "1", "--out", str(out),
    ])  # fmt: skip
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    (summary,) = doc["summary"]
    assert summary["method"] == "onepass" and summary["views"] == 2 and summary["scenes"] == 2
    assert 0.0 <= summary["auc30"] <= 1.0 and summary["psnr"] > 0
    assert doc["meta"]["weights"]["source"] == "random" and len(doc["meta"]["generator_fingerprint"]) == 16
    assert doc["meta"]["weights"]["registration"] == "all"  # the registration mode is recorded with the run
    assert [r["seed"] for r in doc["rows"]] == [0, 1]
    md = (out / "results.md").read_text()
    assert "| onepass | 2 | 2 |" in md
    # per generator kind: seed 0 is an objects scene, seed 1 a room, one scene each
    assert "## procedural, by scene kind" in md
    assert "| objects | onepass | 2 | 1 |" in md and "| room | onepass | 2 | 1 |" in md
    assert (out / "auc_vs_views.png").stat().st_size > 1000
    assert "| onepass | 2 | 2 |" in capsys.readouterr().out


def test_cli_eval_bad_inputs(tmp_path, capsys) -> None:
    base = ["eval", "--no-colmap", "--out", str(tmp_path / "o")]
    assert main(base + ["--seed-offset", "999999", "--scenes", "2"]) == 2
    assert "evaluation seeds must lie in [0, 1000000)" in capsys.readouterr().err
    assert main(base + ["--suite", "folder", "--data", str(tmp_path / "nowhere")]) == 2
    assert "cameras.json: missing" in capsys.readouterr().err
    from models.data.procedural import make_scene

    scene_dir = save_scene(make_scene(1, views=2, width=28, height=28), tmp_path / "scene")
    (scene_dir / "depth" / "001.npy").unlink()
    assert main(base + ["--suite", "folder", "--data", str(scene_dir)]) == 2
    assert "depth/001.npy: missing ground-truth file" in capsys.readouterr().err
    assert main(base + ["--suite", "motorcycle", "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "--weights" in capsys.readouterr().err
    assert main(base + ["--preset", "huge"]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written on refusal


def test_per_kind_summaries_pool_each_kinds_pairs_only() -> None:
    from models.eval.report import aggregate, scene_kind

    def row(scene: str, pair_deg: list[float], psnr: float) -> dict:
        return {"suite": "procedural", "method": "onepass", "views": 3, "scene": scene, "runtime_s": 1.0,
                "pair_max_deg": pair_deg, "auc30": 0.0, "psnr": psnr}  # fmt: skip

    rows = [row("orbit-4", [90.0, 100.0, 120.0], 6.0), row("forward-3", [1.0, 2.0, 3.0], 20.0),
            row("orbit-8", [3.0, 150.0, 170.0], 8.0)]  # fmt: skip
    rows.append({**rows[0], "suite": "motorcycle", "scene": "motorcycle"})  # not a procedural kind
    assert [scene_kind(r) for r in rows] == ["orbit", "forward", "orbit", None]
    by_kind = {s["kind"]: s for s in aggregate(rows, by_kind=True)}
    assert set(by_kind) == {"orbit", "forward"} and by_kind["orbit"]["scenes"] == 2
    assert by_kind["orbit"]["psnr"] == pytest.approx(7.0)
    # AUC pools the kind's pairs: orbit has one pair at 3° (of 6), forward all three under 30°
    assert by_kind["orbit"]["auc30"] == pytest.approx(aggregate(rows[0:3:2])[0]["auc30"])
    assert 0 < by_kind["orbit"]["auc30"] < by_kind["forward"]["auc30"]
