"""The trainer on a micro network: exact resume, learning on a fixed batch, refusals."""

from __future__ import annotations

import csv

import pytest
import torch

from models.training.checkpoint import CheckpointError
from models.training.curriculum import step_plan
from models.training.loop import Trainer
from tests.training.conftest import MICRO, micro_train_config


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path) -> None:
    cfg = micro_train_config(render=0.0)
    straight = Trainer(tmp_path / "a", cfg, model_config=MICRO)
    straight.train(max_steps=4, progress=False)

    half = Trainer(tmp_path / "b", cfg, model_config=MICRO)
    half.train(max_steps=2, progress=False)
    torch.manual_seed(12345)  # disturb global RNG: resume must restore it
    resumed = Trainer(tmp_path / "b", model_config=MICRO, resume=True)
    assert resumed.step == 2
    resumed.train(max_steps=2, progress=False)

    assert resumed.step == straight.step == 4
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.optimizer.state_dict()["state"].keys() == straight.optimizer.state_dict()["state"].keys()
    with (tmp_path / "b" / "log.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4]
    assert (tmp_path / "b" / "loss_curve.png").stat().st_size > 1000


def test_few_steps_reduce_the_loss_on_a_fixed_batch(tmp_path) -> None:
    from models.data.procedural import make_batch
    from models.training.step import compute_losses

    cfg = micro_train_config(render=0.0, lr=2e-3, warmup_steps=1)
    trainer = Trainer(tmp_path, cfg, model_config=MICRO)
    plan = step_plan(cfg.stages, 0, cfg.seed)
    batch = make_batch(
        list(plan.seeds), views=plan.views + plan.targets, width=plan.width, height=plan.height
    )
    losses = []
    for _ in range(12):
        total = compute_losses(trainer.model, batch, plan, cfg.weights)["total"]
        trainer.optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), 1.0)
        trainer.optimizer.step()
        losses.append(float(total.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_refuses_to_overwrite_and_bad_resumes(tmp_path) -> None:
    cfg = micro_train_config(render=0.0)
    Trainer(tmp_path / "run", cfg, model_config=MICRO).train(max_steps=1, progress=False)
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already exists; pass resume=True"):
        Trainer(tmp_path / "run", cfg, model_config=MICRO)
    with pytest.raises(CheckpointError, match="does not exist"):
        Trainer(tmp_path / "empty", model_config=MICRO, resume=True)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        Trainer(tmp_path / "junk", model_config=MICRO, resume=True)
    other = MICRO.with_(embed_dim=48)
    with pytest.raises(CheckpointError, match="does not fit"):
        Trainer(tmp_path / "run", model_config=other, resume=True)
    assert (tmp_path / "run" / "last.pt").read_bytes() == before  # nothing overwritten by the refusals


def test_a_zpressor_step_trains_the_fusion_blocks(tmp_path) -> None:
    from models.data.procedural import make_batch
    from models.training.curriculum import StepPlan
    from models.training.step import compute_losses

    cfg = micro_train_config()
    trainer = Trainer(tmp_path, cfg, model_config=MICRO)
    plan = StepPlan(step=0, seeds=(1_000_007,), views=4, targets=1, height=28, width=28, target_index=(2,),
                    max_anchors=2)  # fmt: skip
    batch = make_batch(list(plan.seeds), views=5, width=28, height=28)
    losses = compute_losses(trainer.model, batch, plan, cfg.weights)
    assert torch.isfinite(losses["total"]) and float(losses["loss_render_total"].detach()) > 0
    losses["total"].backward()
    grads = [p.grad for p in trainer.model.zpressor.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_validation_and_export(tmp_path) -> None:
    from models.checkpoint import read_state_dict
    from models.training.loop import export_weights
    from models.training.validate import validate

    trainer = Trainer(tmp_path / "run", micro_train_config(render=0.0), model_config=MICRO)
    before = torch.get_rng_state()
    res = validate(trainer.model, views=2, size=28, seeds=(900_000, 900_001))
    assert torch.equal(before, torch.get_rng_state()) and trainer.model.training
    assert 0.0 <= res["auc30"] <= 1.0 and res["abs_rel_median"] > 0 and res["psnr"] > 0
    trainer.train(max_steps=1, progress=False)
    snapshot = trainer.save_snapshot()
    assert snapshot == tmp_path / "run" / "snapshots" / "step_0000001.safetensors"
    with pytest.raises(ValueError, match="above the 1000-byte limit"):
        export_weights(
            tmp_path / "run" / "last.pt", tmp_path / "w.safetensors", max_bytes=1000, model_config=MICRO
        )
    assert not (tmp_path / "w.safetensors").exists()
    # MICRO is not the real tiny layout, so exporting it as "tiny" must refuse rather than write a wrong file.
    with pytest.raises(CheckpointError, match="does not fit"):
        export_weights(tmp_path / "run" / "last.pt", tmp_path / "w.safetensors")
    path = export_weights(tmp_path / "run" / "last.pt", tmp_path / "w.safetensors", model_config=MICRO)
    sd, fmt, meta = read_state_dict(path)  # the reader models.load_model uses
    assert fmt == "safetensors" and meta["step"] == "1" and meta["preset"] == "tiny"
    mine = trainer.model.state_dict()
    assert sd.keys() == mine.keys() and all(torch.equal(sd[k], mine[k]) for k in sd)
    snap, _, snap_meta = read_state_dict(snapshot)  # a snapshot is the same file as an export of that step
    assert snap_meta == meta and all(torch.equal(snap[k], sd[k]) for k in sd)


def test_prefetching_workers_render_the_same_batches() -> None:
    from models.training.prefetch import BatchSource, render_batch

    cfg = micro_train_config()
    plan_of = lambda step: step_plan(cfg.stages, step, cfg.seed)  # noqa: E731
    source = BatchSource(plan_of, workers=1)
    try:
        for step in (0, 1):
            got, want = source.get(step), render_batch(plan_of(step))
            assert got.keys() == want.keys()
            assert {k: torch.equal(got[k], want[k]) for k in got} == dict.fromkeys(got, True), (
                (got["images"] - want["images"]).abs().max()
            )
    finally:
        source.close()
    with pytest.raises(ValueError, match="workers must be >= 0"):
        BatchSource(plan_of, workers=-1)


def test_warm_start_continues_from_weights_at_their_step(tmp_path) -> None:
    from models.checkpoint import save_weights
    from models.training.schedule import lr_multiplier

    first = Trainer(tmp_path / "a", micro_train_config(render=0.0), model_config=MICRO)
    first.train(max_steps=3, progress=False)
    weights = save_weights(first.model, tmp_path / "w.safetensors", metadata={"train_hours": 0.5})
    cfg = micro_train_config(render=0.0, init_weights=str(weights), init_step=3, rewarm_steps=4)
    warm = Trainer(tmp_path / "b", cfg, model_config=MICRO)
    # the file's recorded training hours (0.5) carry over, so the run's total keeps adding up; no timing here
    assert warm.step == 3 and warm.elapsed_s == pytest.approx(0.5 * 3600)
    assert all(torch.equal(v, first.model.state_dict()[k]) for k, v in warm.model.state_dict().items())
    assert warm.plan(3) == first.plan(3)  # the curriculum carries on where the weights left off
    peak = lr_multiplier(3, warmup_steps=2, total_steps=100, min_ratio=cfg.min_lr_ratio) * cfg.lr
    assert warm.optimizer.param_groups[0]["lr"] == pytest.approx(peak / 4)  # re-warm: 1/4 of the rate
    warm.train(max_steps=2, progress=False)
    resumed = Trainer(tmp_path / "b", model_config=MICRO, resume=True)  # resumes like any run
    assert resumed.step == 5 and resumed.config.init_step == 3

    with pytest.raises(CheckpointError, match="init weights: .*does not match the architecture"):
        Trainer(tmp_path / "c", cfg, model_config=MICRO.with_(embed_dim=48))
    with pytest.raises(ValueError, match="init_step needs init_weights"):
        micro_train_config(init_step=3)


def test_a_size_first_seen_in_inference_mode_still_trains(micro_model_config):
    """Validation runs under inference mode; the position tables it creates are cached and reused by the
    next training step at that size, whose backward must still work (a crash seen at step 12,002)."""
    from models.build import build_model

    model = build_model(micro_model_config).train()
    images = torch.rand(1, 2, 3, 42, 56)  # a grid no earlier call has cached
    with torch.inference_mode():
        model(images)
    out = model(images)
    loss = out["depth"].mean() + out["pose_enc"].pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_anneal_ends_the_run_with_a_linear_decay_to_zero(tmp_path) -> None:
    from models.training.loop import AnnealError
    from models.training.schedule import lr_multiplier

    cfg = micro_train_config(render=0.0)
    Trainer(tmp_path / "a", cfg, model_config=MICRO).train(max_steps=3, progress=False)
    annealing = Trainer(tmp_path / "a", model_config=MICRO, resume=True, anneal_steps=4)
    assert (annealing.config.anneal_start, annealing.config.end_step) == (3, 7)
    summary = annealing.train(progress=False)  # no step limit given: the anneal's end stops the run
    assert summary.step == 7
    with (tmp_path / "a" / "log.csv").open() as f:
        lrs = {int(r["step"]): float(r["lr"]) for r in csv.DictReader(f)}
    base = lr_multiplier(3, warmup_steps=2, total_steps=100, min_ratio=cfg.min_lr_ratio) * cfg.lr
    assert [lrs[s] / base for s in (4, 5, 6, 7)] == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert lrs[3] > base  # before the anneal: still the cosine (which is higher one step earlier)

    resumed = Trainer(tmp_path / "a", model_config=MICRO, resume=True)  # the anneal is part of the run
    assert resumed.config.anneal_start == 3 and resumed.train(progress=False).steps_done == 0
    with pytest.raises(AnnealError, match="already anneals over 4 steps from step 3"):
        Trainer(tmp_path / "a", model_config=MICRO, resume=True, anneal_steps=5)
    with pytest.raises(AnnealError, match="must be >= 1"):
        Trainer(tmp_path / "b", cfg, model_config=MICRO, anneal_steps=0)
    assert (
        lr_multiplier(10, warmup_steps=2, total_steps=100, min_ratio=0.05, anneal_start=6, anneal_steps=4)
        == 0
    )


def test_direction_weight_joins_a_resumed_run_and_stays_with_it(tmp_path) -> None:
    cfg = micro_train_config(render=0.0)
    Trainer(tmp_path / "a", cfg, model_config=MICRO).train(max_steps=2, progress=False)
    turned_on = Trainer(
        tmp_path / "a", model_config=MICRO, resume=True, direction_weight=0.5, sign_invariant_rotation=True
    )
    assert turned_on.config.weights.camera_direction == 0.5
    assert turned_on.config.weights.sign_invariant_rotation
    turned_on.train(max_steps=2, progress=False)
    with (tmp_path / "a" / "log.csv").open() as f:
        rows = {int(r["step"]): r for r in csv.DictReader(f)}
    assert float(rows[1]["loss_Tdir"]) == float(rows[2]["loss_Tdir"]) == 0.0  # before: off, not computed
    assert all(0.0 < float(rows[s]["loss_Tdir"]) <= 2.0 for s in (3, 4))
    for s in (3, 4):  # the total camera loss holds the term at its weight: 5 * (T + R + FL/2 + 0.5 * Tdir)
        r = {k: float(rows[s][k]) for k in ("loss_camera", "loss_T", "loss_R", "loss_FL", "loss_Tdir")}
        parts = r["loss_T"] + r["loss_R"] + 0.5 * r["loss_FL"] + 0.5 * r["loss_Tdir"]
        assert r["loss_camera"] == pytest.approx(5.0 * parts, rel=1e-5)
    later = Trainer(tmp_path / "a", model_config=MICRO, resume=True)  # stored with the run
    assert later.config.weights.camera_direction == 0.5 and later.config.weights.sign_invariant_rotation
    with pytest.raises(ValueError, match="direction_weight must be >= 0"):
        Trainer(tmp_path / "b", cfg, model_config=MICRO, direction_weight=-0.1)


def test_cpu_bf16_trains_close_to_float32_and_stays_with_the_run(tmp_path, monkeypatch) -> None:
    cfg = micro_train_config(render=1.0)
    fp32 = Trainer(tmp_path / "fp32", cfg, model_config=MICRO)
    bf16 = Trainer(tmp_path / "bf16", cfg, model_config=MICRO, cpu_bf16=True)
    assert bf16.config.cpu_bf16 and bf16.model.cpu_bf16 and not fp32.model.cpu_bf16
    seen: set[torch.dtype] = set()
    hook = bf16.model.aggregator.frame_blocks[0].mlp.fc1.register_forward_hook(
        lambda mod, inp, out: seen.add(out.dtype)
    )
    # Same seed, same step: the same batch. Step 1 (same weights) differs only by bf16 rounding.
    a, b = fp32.train_step(), bf16.train_step()
    hook.remove()
    assert seen == {torch.bfloat16}  # the trunk really ran in bf16
    assert a["total"] != b["total"] and b["total"] == pytest.approx(a["total"], rel=0.02)
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # master weights stay fp32
    for _ in range(3):
        row = bf16.train_step()
        assert torch.isfinite(torch.tensor(row["total"])) and row["grad_norm"] > 0

    import models.training.loop as loop

    validated: list[bool] = []  # the precision the (real) validation ran in
    real_validate = loop.validate

    def recording_validate(model, views):
        validated.append(model.cpu_bf16)
        return real_validate(model, views=views)

    monkeypatch.setattr(loop, "validate", recording_validate)
    assert 0 <= bf16.run_validation()["auc30"] <= 1
    assert validated == [False] and bf16.model.cpu_bf16  # validation in fp32, then back to bf16

    bf16.save()
    assert Trainer(tmp_path / "bf16", model_config=MICRO, resume=True).model.cpu_bf16  # kept with the run
    off = Trainer(tmp_path / "bf16", model_config=MICRO, resume=True, cpu_bf16=False)
    assert not off.config.cpu_bf16 and not off.model.cpu_bf16


def test_pair_registration_steps_are_drawn_last_and_only_on_zpressor_steps() -> None:
    from dataclasses import replace

    from models.training.curriculum import DEFAULT_STAGES, step_plan

    last = DEFAULT_STAGES[-1]
    assert last.pair_registration_prob == 0.5 and last.start == 21_103
    without = (*DEFAULT_STAGES[:-1], replace(last, pair_registration_prob=0.0))
    modes = []
    for step in range(21_103, 21_503):
        plan, plain = step_plan(DEFAULT_STAGES, step, seed=0), step_plan(without, step, seed=0)
        assert replace(plan, registration="all") == plain  # every other draw is unchanged
        if plan.max_anchors is None:
            assert plan.registration == "all"
        else:
            modes.append(plan.registration)
    assert 0.3 < modes.count("pair") / len(modes) < 0.7 and len(modes) > 50


def test_a_pair_registration_step_trains_and_restores_the_models_mode(tmp_path) -> None:
    from models.data.procedural import make_batch
    from models.training.curriculum import StepPlan
    from models.training.step import compute_losses

    cfg = micro_train_config()
    trainer = Trainer(tmp_path, cfg, model_config=MICRO)
    plan = StepPlan(step=0, seeds=(1_000_007,), views=5, targets=1, height=28, width=28, target_index=(2,),
                    max_anchors=3, registration="pair")  # fmt: skip
    batch = make_batch(list(plan.seeds), views=6, width=28, height=28)
    losses = compute_losses(trainer.model, batch, plan, cfg.weights)
    assert torch.isfinite(losses["total"])
    assert trainer.model.registration == "all"  # the step's mode does not leak into later steps
    losses["total"].backward()
    assert all(p.grad is not None for p in trainer.model.zpressor.parameters())
