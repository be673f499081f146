"""Smooth depth corrections (models.depth_field): what the lattice recovers from sparse samples, and what
it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from models.depth_field import FieldOptions, expand_field, fit_log_scale_field

HW = (120, 160)


def _pixel_centres(hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.meshgrid(np.arange(hw[0]) + 0.5, np.arange(hw[1]) + 0.5, indexing="ij")
    return xs, ys


def _tilt(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A log-scale plane across the image: ×1.22 from left to right, ×0.85 from top to bottom."""
    return 0.2 * x / HW[1] - 0.16 * y / HW[0] + 0.05


def test_a_tilted_scale_is_recovered_through_outliers():
    rng = np.random.default_rng(0)
    xy = np.stack([rng.uniform(0, HW[1], 400), rng.uniform(0, HW[0], 400)], 1)
    log_ratio = _tilt(xy[:, 0], xy[:, 1]) + rng.normal(0, 0.01, 400)
    log_ratio[:30] += rng.choice([-1.0, 1.0], 30)  # 7.5 % gross outliers (wrong tracks)
    for grid in (2, 4, 8):
        field = expand_field(fit_log_scale_field(xy, log_ratio, HW, FieldOptions(grid=grid)), HW)
        assert field.shape == HW and field.dtype == np.float32
        error = np.abs(np.log(field) - _tilt(*_pixel_centres(HW)))
        # the plane costs no smoothness penalty; an outlier alone in a fine cell still nudges its node
        assert np.percentile(error, 95) < 0.02 and error.mean() < 0.01, (grid, error.max(), error.mean())
    # a single scale cannot follow the tilt: its worst pixel is off by more than 10 %
    single = expand_field(fit_log_scale_field(xy, log_ratio, HW, FieldOptions(grid=1)), HW)
    assert np.abs(np.log(single) - _tilt(*_pixel_centres(HW))).max() > 0.1


def test_too_few_samples_give_one_scale_the_median():
    xy = np.array([[10.0, 10.0], [100.0, 50.0], [150.0, 110.0]])
    log_ratio = np.log([2.0, 2.5, 10.0])
    lattice = fit_log_scale_field(xy, log_ratio, HW)  # default min_samples is far above 3
    np.testing.assert_allclose(lattice, np.log(2.5))
    np.testing.assert_allclose(expand_field(lattice, HW), 2.5, rtol=1e-6)
    assert not fit_log_scale_field(np.empty((0, 2)), np.empty(0), HW).any()  # no samples: factor 1


def test_corrections_stay_within_max_deviation_of_the_median():
    rng = np.random.default_rng(1)
    xy = np.stack([rng.uniform(0, HW[1], 300), rng.uniform(0, HW[0], 300)], 1)
    log_ratio = np.where(xy[:, 0] < HW[1] / 2, 0.0, 1.5)  # half the image claims ×4.5
    opts = FieldOptions(grid=4, max_deviation=0.25)
    lattice = fit_log_scale_field(xy, log_ratio, HW, opts)
    median = float(np.median(log_ratio))
    assert lattice.min() >= median - 0.25 - 1e-12 and lattice.max() <= median + 0.25 + 1e-12
    assert lattice.max() - lattice.min() > 0.4  # it still bends as far as it may


def test_nodes_without_samples_stay_at_the_median():
    """Samples only in the left third: the right side of an 8×8 lattice keeps the view's single scale."""
    rng = np.random.default_rng(2)
    xy = np.stack([rng.uniform(0, HW[1] / 3, 300), rng.uniform(0, HW[0], 300)], 1)
    log_ratio = 0.3 + 0.1 * np.sin(xy[:, 1] / 20)
    lattice = fit_log_scale_field(xy, log_ratio, HW, FieldOptions(grid=8))
    assert np.abs(lattice[:, -1] - np.median(log_ratio)).max() < 0.05


@pytest.mark.parametrize(
    ("xy", "log_ratio", "weights", "message"),
    [
        (np.zeros((3, 2)), np.zeros(4), None, "3 samples"),
        (np.zeros((2, 2)), np.array([0.0, np.nan]), None, "finite"),
        (np.zeros((2, 2)), np.zeros(2), np.array([1.0, -1.0]), "non-negative"),
    ],
)
def test_bad_samples_are_rejected_with_the_reason(xy, log_ratio, weights, message):
    with pytest.raises(ValueError, match=message):
        fit_log_scale_field(xy, log_ratio, HW, weights=weights)


def test_grid_must_be_positive():
    with pytest.raises(ValueError, match="grid must be >= 1"):
        fit_log_scale_field(np.zeros((1, 2)), np.zeros(1), HW, FieldOptions(grid=0))
