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
