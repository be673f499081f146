"""Output activations of the dense heads (raw channels-last maps → values and confidences)."""

from __future__ import annotations

import torch
from torch import Tensor


def inverse_log(y: Tensor) -> Tensor:
    """``sign(y) · (exp(|y|) − 1)``: the point head's activation."""
    return torch.sign(y) * torch.expm1(y.abs())


def exp_plus_one(c: Tensor) -> Tensor:
    """``1 + exp(c)``: confidence, always > 1."""
    return 1 + torch.exp(c)


def activate_depth(raw: Tensor) -> tuple[Tensor, Tensor]:
    """``[..., 2]`` → depth ``[..., 1]`` (``exp``) and confidence ``[...]``."""
    return torch.exp(raw[..., :-1]), exp_plus_one(raw[..., -1])


def activate_points(raw: Tensor) -> tuple[Tensor, Tensor]:
    """``[..., 4]`` → world points ``[..., 3]`` (inverse-log) and confidence ``[...]``."""
    return inverse_log(raw[..., :-1]), exp_plus_one(raw[..., -1])
